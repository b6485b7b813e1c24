"""Average-linkage agglomerative clustering with cannot-link constraints and a threshold.

Why this and not sklearn's AgglomerativeClustering: identity matching has hard constraints
(two tracklets visible at the same time in one camera are two people), and sklearn cannot
express them. Average linkage is robust to one bad crop; the explicit threshold is a named
config value. O(n^2) memory, O(n^2) work per merge: fine for thousands of items.
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
    active = np.ones(n, bool)
    members: list[list[int]] = [[i] for i in range(n)]
    while True:
        with np.errstate(invalid="ignore", divide="ignore"):
            average = np.where(counts > 0, sums / np.maximum(counts, 1), -np.inf)
        average[blocked] = -np.inf
        average[~active, :] = -np.inf
        average[:, ~active] = -np.inf
        np.fill_diagonal(average, -np.inf)
        flat = int(np.argmax(average))
        a, b = divmod(flat, n)
        if average[a, b] < threshold:
            break
        # Merge b into a: linkage sums and counts add up (exact average linkage).
        sums[a, :] += sums[b, :]
        sums[:, a] = sums[a, :]
        counts[a, :] += counts[b, :]
        counts[:, a] = counts[a, :]
        blocked[a, :] |= blocked[b, :]
        blocked[:, a] = blocked[a, :]
        counts[a, a] = 0
        active[b] = False
        members[a].extend(members[b])
        members[b] = []
    labels = np.empty(n, np.int64)
    order = sorted((min(m), i) for i, m in enumerate(members) if m)
    for label, (_, cluster) in enumerate(order):
        labels[members[cluster]] = label
    return labels


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
