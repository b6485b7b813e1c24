"""CLIP degrades cleanly: missing weights -> one warning and None; random model -> real vectors."""

import logging

import numpy as np

from tasks.embed_clip import load_clip


def test_missing_pretrained_weights_warn_once_and_return_none(caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="smarttrace.clip"):
        assert load_clip("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path) is None
    warnings = [r for r in caplog.records if r.name == "smarttrace.clip"]
    assert len(warnings) == 1 and "attributes only" in warnings[0].getMessage()


def test_disabled_clip_returns_none():
    assert load_clip("ViT-B-32", "") is None


def test_random_model_exercises_the_image_and_text_path():
    clip = load_clip("ViT-B-32", "random")
    assert clip is not None and clip.is_random
    crops = [np.random.default_rng(0).integers(0, 255, (120, 50, 3), dtype=np.uint8) for _ in range(2)]
    images = clip.embed_images(crops)
    texts = clip.embed_texts(["red jacket", "blue jeans"])
    assert images.shape == (2, clip.dim) and texts.shape == (2, clip.dim)
    assert np.allclose(np.linalg.norm(images, axis=1), 1, atol=1e-4)
    assert not np.allclose(texts[0], texts[1])  # different text, different vector
