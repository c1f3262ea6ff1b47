"""``python -m kit evaluate MODEL_DIR [--against SERVING_DIR] [--seed N] [--json]``: evaluation beyond accuracy
(:mod:`kit.evaluate`) of a trained model directory on its held-out split, and with ``--against`` the promotion
gate: promote the candidate MODEL_DIR over the served SERVING_DIR, or hold, with one reason per criterion.

Exit 0: evaluated (and, with --against, promote); 1: hold, or a directory that holds no valid model (the message
names the file and the fix); 2: usage error.
"""

from __future__ import annotations

import json
from typing import Any

from kit.cli import EXIT_FAILED, EXIT_OK, command_parser


def main(argv: list[str]) -> int:
    parser = command_parser("evaluate", __doc__)
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="the candidate (or only) model directory")
    parser.add_argument("--against", metavar="SERVING_DIR", help="the served model to compare with (gate)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise draws (default 0)")
    parser.add_argument("--json", action="store_true", help="print the evaluation(s) and decision as JSON")
    args = parser.parse_args(argv)

    from kit.evaluate import evaluate_model, promotion_gate
    from kit.train.artifact import verify

    verify(args.model_dir)  # a bad directory fails before any work, naming the file
    if args.against:
        verify(args.against)
    candidate = evaluate_model(args.model_dir, seed=args.seed)
    serving = evaluate_model(args.against, seed=args.seed) if args.against else None
    decision = promotion_gate(candidate, serving) if serving is not None else None
    if args.json:
        data: dict[str, Any] = {"evaluation": candidate.to_dict()}
        if serving is not None and decision is not None:
            data.update(serving=serving.to_dict(), promote=decision.promote, reasons=decision.reasons)
        print(json.dumps(data, indent=2))
    else:
        print(candidate)
        if serving is not None and decision is not None:
            print(f"\n{serving}\n\nGate, candidate {args.model_dir} vs serving {args.against}:\n{decision}")
    return EXIT_OK if decision is None or decision.promote else EXIT_FAILED
