"""`edgedet tune`: choose min_score and iou from your own footage, with a report and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="choose min_score and iou from your own footage",
        description="Run the model once per frame of DATA (an image folder or a video), keep "
        "every candidate above a floor, and evaluate min_score 0.05-0.95 x iou 0.3-0.8 against "
        "annotations or a reference model: precision, recall, F1, duplicates, AP. Recommends "
        "an operating point and writes a Markdown report with plots into --out.",
    )
    p.add_argument("data", metavar="DATA", help="an image folder or a video file")
    p.add_argument("--model", help="model .tflite (default: the bundled person detector)")
    truth = p.add_mutually_exclusive_group()
    truth.add_argument(
        "--annotations",
        metavar="FILE|DIR",
        help="ground truth: a COCO .json, or a folder of YOLO .txt or Pascal VOC .xml files",
    )
    truth.add_argument(
        "--reference",
        metavar="MODEL",
        help="ground truth from a reference model: a float .tflite, or the original TF1 "
        "frozen graph .pb or TF2 Object Detection API SavedModel folder (needs edgedet[convert])",
    )
    p.add_argument(
        "--reference-min-score",
        type=float,
        metavar="S",
        default=0.5,
        help="reference detections with score >= this are the true objects (default 0.5)",
    )
    p.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help="use N frames spread evenly (default: every image of a folder, 200 frames of a video)",
    )
    p.add_argument(
        "--label-map",
        action="append",
        default=[],
        metavar="A=B",
        help="annotation label A is the model's label B (A=- ignores A); repeatable",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--target-precision", type=float, metavar="P", help="highest recall with precision >= P"
    )
    target.add_argument(
        "--target-recall", type=float, metavar="R", help="highest precision with recall >= R"
    )
    p.add_argument(
        "--write-card",
        action="store_true",
        help="write the recommended min_score and iou into the model card (atomically)",
    )
    p.add_argument("--out", default="edgedet-tune", help="report folder (default edgedet-tune)")
    p.add_argument("--no-plots", action="store_true", help="numbers only (no matplotlib)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from edgedet.models import default_model_path
    from edgedet.tune.tuner import TuneOptions, tune

    opts = TuneOptions(
        model=Path(args.model) if args.model else default_model_path(),
        data=Path(args.data),
        annotations=Path(args.annotations) if args.annotations else None,
        reference=Path(args.reference) if args.reference else None,
        reference_min_score=args.reference_min_score,
        frames=args.frames,
        label_map=tuple(args.label_map),
        target_precision=args.target_precision,
        target_recall=args.target_recall,
        write_card=args.write_card,
        out=Path(args.out),
        plots=not args.no_plots,
    )

    def progress(message: str) -> None:
        print(message, flush=True)  # stderr carries only the one-line error, if any

    result = tune(opts, progress)
    from edgedet.tune.report import trade_summary, write_report

    report = write_report(result, opts.out, plots=opts.plots)
    new = result.chosen
    print(
        f"recommended: min_score {new.min_score:.2f}, iou {new.iou:.2f} ({result.rule}): "
        f"precision {new.precision:.3f}, recall {new.recall:.3f}, F1 {new.f1:.3f}"
    )
    print(trade_summary(result))
    print(f"report: {report}")
    if opts.write_card:
        from edgedet.modelcard import card_path_for, write_defaults

        card = card_path_for(opts.model)  # checked to exist and be writable before the run
        write_defaults(card, min_score=new.min_score, iou=new.iou, tuned=result.provenance())
        print(f"card: {card} (defaults min_score {new.min_score:.2f}, iou {new.iou:.2f})")
    return 0
