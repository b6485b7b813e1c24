"""k-reciprocal re-ranking (Zhong, Zheng, Cao, Li, "Re-ranking Person Re-identification with k-reciprocal
Encoding", CVPR 2017) and camera-aware feature centering: two training-free levers for cross-camera ReID.

Why re-ranking: across cameras the nearest neighbour of a person is often a stranger photographed under
the same light; a true match is usually *mutually* close (each is in the other's k nearest neighbours)
even when not first. The Jaccard distance between k-reciprocal neighbour sets rewards that. Why camera
centering: every camera adds its own offset to every embedding (light, white balance, viewpoint), so
removing each camera's mean leaves what differs between people (Zheng et al.'s camera-based batch
normalisation and many unsupervised ReID papers use the same idea at test time). Both need no labels:
a deployment has its own cameras' embeddings.

Plain numpy, no model, no I/O: the search, the matching and the benchmarks all call these.
"""

from __future__ import annotations

import numpy as np

# Published defaults of the re-ranking paper (Market-1501); not tuned on any set reported here.
K1, K2, LAMBDA = 20, 6, 0.3


def l2_normalise(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    features = np.asarray(features, np.float32)
    norms = np.linalg.norm(features, axis=-1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)


def center_by_camera(features: np.ndarray, cameras: np.ndarray, min_items: int = 2) -> np.ndarray:
    """Subtract each camera's mean feature, then re-normalise; a camera with fewer than `min_items` rows
    is left as it is (its mean would be the item itself, erasing it).

    features: (n, d) L2-normalised embeddings; cameras: (n,) camera label per row.
    """
    features = np.asarray(features, np.float32)
    cameras = np.asarray(cameras)
    if len(features) == 0:
        return features.copy()
    centred = features.copy()
    for camera in np.unique(cameras):
        rows = cameras == camera
        if rows.sum() >= min_items:
            centred[rows] = features[rows] - features[rows].mean(axis=0, keepdims=True)
    return l2_normalise(centred)


def _k_reciprocal(initial_rank: np.ndarray, i: int, k: int) -> np.ndarray:
    """Items j among i's k nearest whose own k nearest contain i."""
    forward = initial_rank[i, : k + 1]
    backward = initial_rank[forward, : k + 1]
    return forward[np.any(backward == i, axis=1)]


def k_reciprocal_distance(
    distance: np.ndarray, k1: int = K1, k2: int = K2, lambda_value: float = LAMBDA
) -> np.ndarray:
    """Re-ranked (n, n) distance over ONE pool of items (queries and gallery together).

    distance: (n, n) symmetric original distance (e.g. 2 - 2 cosine, or 1 - cosine), zero diagonal.
    Returns (1 - lambda) * Jaccard distance of k-reciprocal sets + lambda * original distance, the
    paper's final distance. k1 and k2 shrink to the pool's size for small pools.
    """
    distance = np.asarray(distance, np.float64)
    n = len(distance)
    if n == 0:
        return distance.copy()
    k1 = max(1, min(k1, n - 1))
    k2 = max(1, min(k2, n))
    original = distance / max(float(distance.max()), 1e-12)  # the paper scales by the column max
    initial_rank = np.argsort(original, axis=1, kind="stable")
    weights = np.zeros((n, n), np.float64)
    for i in range(n):
        reciprocal = _k_reciprocal(initial_rank, i, k1)
        expansion = reciprocal
        for candidate in reciprocal:  # add a neighbour's half-size reciprocal set if it overlaps enough
            extra = _k_reciprocal(initial_rank, int(candidate), int(np.around(k1 / 2)))
            if len(np.intersect1d(extra, reciprocal)) > 2 / 3 * len(extra):
                expansion = np.append(expansion, extra)
        expansion = np.unique(expansion)
        w = np.exp(-original[i, expansion])
        weights[i, expansion] = w / w.sum()
    if k2 > 1:  # local query expansion: average the weight vectors of the k2 nearest
        weights = np.stack([weights[initial_rank[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.zeros((n, n), np.float64)
    nonzero_rows = [np.flatnonzero(weights[:, j]) for j in range(n)]  # items that have j in their set
    for i in range(n):
        minimum = np.zeros(n, np.float64)
        for j in np.flatnonzero(weights[i]):
            rows = nonzero_rows[j]
            minimum[rows] += np.minimum(weights[i, j], weights[rows, j])
        jaccard[i] = 1 - minimum / (2 - minimum)
    final = (1 - lambda_value) * jaccard + lambda_value * original
    return (final + final.T) / 2  # the pool version is symmetric up to rounding; make it exact


def rerank_similarity(similarity: np.ndarray, k1: int = K1, k2: int = K2, lambda_value: float = LAMBDA) -> np.ndarray:
    """Cosine similarity (n, n) in, re-ranked similarity out (1 - re-ranked distance, so higher = closer)."""
    similarity = np.asarray(similarity, np.float64)
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    return 1.0 - k_reciprocal_distance(distance, k1, k2, lambda_value)
