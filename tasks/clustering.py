"""Average-linkage agglomerative clustering with cannot-link constraints and a threshold.

Why this and not sklearn's AgglomerativeClustering: identity matching has hard constraints
(two tracklets visible at the same time in one camera are two people), and sklearn cannot
express them. Average linkage is robust to one bad crop; the explicit threshold is a named
config value. O(n^2) memory, O(n) work per merge (cached per-row best pairs): fine for thousands of items.
"""

from __future__ import annotations

import numpy as np


def constrained_average_linkage(
    similarity: np.ndarray, cannot_link: np.ndarray, threshold: float, can_link: np.ndarray | None = None
) -> np.ndarray:
    """Cluster labels 0..k-1 (in order of first member) for n items.

    similarity: (n, n) symmetric, e.g. cosine of L2-normalised embeddings.
    cannot_link: (n, n) bool; True pairs never end in one cluster (checked over all members).
    can_link: optional (n, n) bool; pairs outside it contribute no evidence (NaN similarity),
        e.g. outside a camera-pair transit window. A cluster pair with no allowed member pair
        is never merged.
    Merges the most similar allowed pair of clusters while its average similarity >= threshold.
    """
    n = len(similarity)
    if n == 0:
        return np.zeros(0, np.int64)
    allowed = np.ones((n, n), bool) if can_link is None else can_link.astype(bool)
    sums = np.where(allowed, similarity, 0.0).astype(np.float64)
    counts = allowed.astype(np.float64)
    blocked = cannot_link.astype(bool).copy()
    np.fill_diagonal(counts, 0)
    average = _average(sums, counts, blocked)
    np.fill_diagonal(average, -np.inf)
    # Per-row best (value, first column): the global best pair is the first row holding the largest value,
    # which is exactly what an argmax over the flattened matrix returns, at O(n) per merge instead of O(n^2).
    best_col = np.argmax(average, axis=1)
    best = average[np.arange(n), best_col]
    members: list[list[int]] = [[i] for i in range(n)]
    while True:
        a = int(np.argmax(best))
        b = int(best_col[a])
        if not best[a] >= threshold:  # also stops on -inf (nothing left to merge)
            break
        a, b = min(a, b), max(a, b)  # keep the lower index, as the flattened argmax would (symmetric matrix)
        # Merge b into a: linkage sums and counts add up (exact average linkage).
        sums[a, :] += sums[b, :]
        sums[:, a] = sums[a, :]
        counts[a, :] += counts[b, :]
        counts[:, a] = counts[a, :]
        blocked[a, :] |= blocked[b, :]
        blocked[:, a] = blocked[a, :]
        counts[a, a] = 0
        members[a].extend(members[b])
        members[b] = []
        row = _average(sums[a : a + 1], counts[a : a + 1], blocked[a : a + 1])[0]
        row[a] = -np.inf
        row[~_alive(members)] = -np.inf
        average[a, :] = row
        average[:, a] = row
        average[b, :] = -np.inf
        average[:, b] = -np.inf
        best[b], best_col[b] = -np.inf, 0
        stale = np.flatnonzero((best_col == a) | (best_col == b))
        stale = stale[stale != b]
        for i in np.union1d(stale, [a]):
            best_col[i] = int(np.argmax(average[i]))
            best[i] = average[i, best_col[i]]
        fresh = np.setdiff1d(np.flatnonzero(_alive(members)), np.union1d(stale, [a]))
        better = (row[fresh] > best[fresh]) | ((row[fresh] == best[fresh]) & (a < best_col[fresh]))
        best[fresh[better]] = row[fresh[better]]
        best_col[fresh[better]] = a
    labels = np.empty(n, np.int64)
    order = sorted((min(m), i) for i, m in enumerate(members) if m)
    for label, (_, cluster) in enumerate(order):
        labels[members[cluster]] = label
    return labels


def _average(sums: np.ndarray, counts: np.ndarray, blocked: np.ndarray) -> np.ndarray:
    """Average linkage per cluster pair; -inf where there is no allowed evidence or a cannot-link."""
    with np.errstate(invalid="ignore", divide="ignore"):
        average = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
    average[blocked] = -np.inf
    return average


def _alive(members: list[list[int]]) -> np.ndarray:
    return np.fromiter((bool(m) for m in members), bool, len(members))


def consistency_pass(embeddings: np.ndarray, labels: np.ndarray, min_similarity: float) -> np.ndarray:
    """Split off members whose similarity to their cluster's mean (without them) is below the bar.

    Average linkage can pull in an item that is close to one member but not the group; this
    removes such chaining errors. Split items get new labels of their own.
    """
    labels = labels.copy()
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        if len(index) < 3:
            continue
        total = embeddings[index].sum(axis=0)
        for i in index:
            rest = total - embeddings[i]
            rest = rest / max(np.linalg.norm(rest), 1e-9)
            if float(embeddings[i] @ rest) < min_similarity:
                labels[i] = next_label
                next_label += 1
    return labels
