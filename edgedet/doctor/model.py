"""The model `edgedet run` would open: file, card, sha256, full-integer, Edge TPU compiled.

File and card checks are `edgedet.modelcard`'s own (the runtime's); op-level facts come
from the interpreter probe, which runs `edgedet.convert.verify.summarize`.
"""

from __future__ import annotations

from pathlib import Path

from edgedet.doctor import FAIL, OK, SKIP, WARN, Context, Result
from edgedet.errors import ModelError

AREA = "model"


def file_check(ctx: Context) -> Result:
    """The model file is a complete TFLite flatbuffer."""
    from edgedet.modelcard import check_tflite_file

    path = ctx.model_path
    if path is None:
        return Result(
            AREA,
            "model file",
            FAIL,
            "no model.path configured and this edgedet has no bundled model",
            "set model.path to a .tflite file",
        )
    try:
        data = check_tflite_file(path)
    except ModelError as exc:
        return Result(AREA, "model file", FAIL, str(exc), "set model.path to a valid .tflite file")
    return Result(
        AREA,
        "model file",
        OK,
        f"{ctx.shown(path)} ({len(data) / 1e6:.1f} MB, TFLite flatbuffer)",
        facts={"path": str(path), "bytes": len(data)},
    )


def card_check(ctx: Context) -> list[Result]:
    """The card beside the model loads, and the model's sha256 matches it."""
    from edgedet.modelcard import ModelCard, card_path_for, load_model

    path = ctx.model_path
    if path is None or not path.is_file():
        return [Result(AREA, "card", SKIP, "no model file")]
    card_file = card_path_for(path)
    if card_file is None:
        return [
            Result(
                AREA,
                "card",
                WARN,
                f"no card {path.stem}.yaml beside the model: its sha256 cannot be verified and "
                "the decoder is guessed from the outputs",
                "keep the .yaml that `edgedet convert` wrote beside the model",
            )
        ]
    try:
        card = ModelCard.load(card_file)
    except ModelError as exc:
        return [Result(AREA, "card", FAIL, str(exc), "copy the card again or re-run convert")]
    results = [
        Result(
            AREA,
            "card",
            OK,
            f"{ctx.shown(card_file)}: {card.name}, decoder {card.decoder.get('type', '?')}, "
            f"{len(card.labels)} label(s)",
        )
    ]
    if not card.sha256:
        results.append(Result(AREA, "sha256", WARN, "the card has no sha256", "re-run convert"))
    elif card.file != path.name:
        results.append(
            Result(
                AREA,
                "sha256",
                SKIP,
                f"the card describes {card.file} (the model {path.name} was compiled from)",
            )
        )
    else:
        try:
            load_model(path, verify_sha=True)
        except ModelError as exc:
            results.append(
                Result(AREA, "sha256", FAIL, str(exc), "copy model and card again together")
            )
        else:
            results.append(Result(AREA, "sha256", OK, f"matches the card ({card.sha256[:12]}…)"))
    return results


def _summary(ctx: Context) -> tuple[dict | None, Result | None]:
    """The probe's op summary, or the Result that says why there is none."""
    if ctx.model_path is None or not ctx.model_path.is_file():
        return None, Result(AREA, "ops", SKIP, "no model file")
    report = ctx.probe()
    found = report.stage("summary")
    if found is None:
        if report.crashed_in == "summary":
            return None, Result(
                AREA,
                "ops",
                FAIL,
                f"reading the model's ops crashed the interpreter ({report.crash})",
                "copy the model again; convert it with `edgedet convert`",
            )
        return None, Result(AREA, "ops", SKIP, "no usable interpreter to read the model's ops")
    if found.get("file_problem"):
        return None, Result(AREA, "ops", SKIP, "the model file is unusable (see model file)")
    if "error" in found:
        return None, Result(AREA, "ops", FAIL, found["error"], "convert it with `edgedet convert`")
    return found, None


def integer_check(ctx: Context) -> Result:
    found, problem = _summary(ctx)
    if found is None:
        return Result(AREA, "full-integer", problem.status, problem.detail, problem.fix)
    inputs = ", ".join(found.get("inputs", []))
    if found.get("full_integer"):
        note = ", float only in TFLite_Detection_PostProcess" if found["has_postprocess_op"] else ""
        return Result(
            AREA,
            "full-integer",
            OK,
            f"{found['num_ops']} ops, input {inputs}{note}",
            facts=found,
        )
    return Result(
        AREA,
        "full-integer",
        WARN,
        f"float ops left: {', '.join(found.get('float_ops', []))} (they run in float on the "
        "CPU and edgetpu_compiler leaves them off the Edge TPU)",
        "convert it to full integer: `edgedet convert ... --edgetpu`",
        found,
    )


def edgetpu_compiled_check(ctx: Context) -> Result:
    found, problem = _summary(ctx)
    if found is None:
        return Result(AREA, "edgetpu compiled", problem.status, problem.detail, problem.fix)
    ops = int(found.get("edgetpu_ops", 0))
    name = Path(str(ctx.model_path)).name
    if ops and not ctx.coral_configured:
        return Result(
            AREA,
            "edgetpu compiled",
            FAIL,
            f"{name} is compiled for the Edge TPU ({ops} edgetpu-custom-op) but model.edgetpu "
            "is false: the CPU cannot run it",
            "set model.edgetpu: true, or use the CPU model it was compiled from",
        )
    if ops:
        return Result(AREA, "edgetpu compiled", OK, f"{ops} edgetpu-custom-op(s) in {name}")
    if ctx.coral_configured:
        return Result(
            AREA,
            "edgetpu compiled",
            WARN,
            f"{name} is not compiled for the Edge TPU: every op runs on the CPU",
            f"compile it on x86-64: `edgetpu_compiler -s {name}` and use the *_edgetpu.tflite",
        )
    return Result(AREA, "edgetpu compiled", OK, f"{name} is a CPU model (no Edge TPU ops)")


CHECKS = [file_check, card_check, integer_check, edgetpu_compiled_check]
