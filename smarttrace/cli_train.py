"""`smarttrace train attributes`: train the PETA attribute model (tasks/train_attributes.py).

Writes the weights (default: the cache, where `AttributeModel.load` finds them by name), their
person-disjoint split and a manifest with the sha256, data, code and val/test metrics. PETA is
research-only data: the weights carry its terms (no commercial use; cite Deng et al. ACM MM 2014).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def _cmd_train_attributes(args: argparse.Namespace) -> int:
    from smarttrace.assets import cache_dir
    from tasks.attribute_model import DEFAULT_ATTRIBUTE_WEIGHTS
    from tasks.peta import DEFAULT_SUBSETS
    from tasks.train_attributes import TrainConfig, train_attributes

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    config = TrainConfig(
        peta=Path(args.peta),
        out=Path(args.out) if args.out else cache_dir() / DEFAULT_ATTRIBUTE_WEIGHTS,
        subsets=tuple(args.subsets) if args.subsets else DEFAULT_SUBSETS,
        epochs=args.epochs,
        max_steps=args.max_steps,
        seed=args.seed,
        input_hw=(args.height, args.width),
        trunk_pool=args.trunk_pool,
        max_images_per_person=args.max_images_per_person,
        finetune_top=not args.frozen_backbone,
        shared=args.shared,
        loss_weights=args.loss_weights,
        region_head=not args.global_head,
        band_pool=args.band_pool,
    )
    manifest = train_attributes(config)
    test = manifest["metrics"].get("test", {})
    print(json.dumps({"weights": str(config.out), "sha256": manifest["sha256"], "test": test,
                      "training_seconds": manifest["training_seconds"]}))  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `train attributes` to the top-level subcommands."""
    train = sub.add_parser("train", help="train a model from labelled data")
    train_sub = train.add_subparsers(dest="what", required=True)
    attributes = train_sub.add_parser(
        "attributes", help="pedestrian attribute model from PETA (research-only data; minutes on a CPU)"
    )
    attributes.add_argument("--peta", required=True, help="PETA root: <PETA>/<subset>/archive/Label.txt")
    attributes.add_argument("--out", help="weights file to write (default: the cache, found by name)")
    attributes.add_argument("--subsets", nargs="+", help="PETA subsets to train on, "
                            "person-disjoint (default: all seven; 3DPeS MIT TownCentre i-LID for a model that may "
                            "feed ReID figures on VIPeR, PRID, GRID)")
    attributes.add_argument("--epochs", type=int, default=12)
    attributes.add_argument("--max-steps", type=int, help="stop after this many optimiser steps")
    attributes.add_argument("--seed", type=int, default=0, help="split and training seed")
    attributes.add_argument("--height", type=int, default=256, help="input height, pixels (256 x 128: the "
                            "ReID pass's trunk is shared, attributes cost only their top)")
    attributes.add_argument("--width", type=int, default=128, help="input width, pixels")
    attributes.add_argument("--trunk-pool", type=int, default=1, help="k x k average pool of the trunk maps "
                            "before the top (2: the earlier, cheaper 8x4 grid; 1 with --height 128 --width 64: the "
                            "format-1 model, its own trunk pass)")
    attributes.add_argument("--max-images-per-person", type=int, default=8,
                            help="evenly spaced images per person (TownCentre has ~31 frames each); 0 = all")
    attributes.add_argument("--shared", choices=("stem", "trunk", "none"), default="stem",
                            help="layers kept as the ReID model's, read from its pass in the embed stage: stem = "
                            "conv1-conv2 (default), trunk = conv1-conv3 (cheaper, less accurate), none = train every "
                            "layer (the model's own pass)")
    attributes.add_argument("--frozen-backbone", action="store_true", help="ablation: train the head only")
    attributes.add_argument("--loss-weights", choices=("deepmar", "balanced", "none"), default="deepmar",
                            help="class-imbalance weighting of the BCE (none = plain BCE)")
    attributes.add_argument("--global-head", action="store_true", help="ablation: no region mask on the head")
    attributes.add_argument("--band-pool", choices=("avg", "avgmax"), default="avgmax",
                            help="each body band's features: their mean and maximum (default), or the mean only "
                            "(models before 2026-12-06)")
    attributes.set_defaults(func=_cmd_train_attributes)
