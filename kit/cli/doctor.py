"""``python -m kit doctor [--json]``: is this machine ready for the curriculum, and if not, how to fix it.

Prints one line per check with its fix; ``--json`` prints the report for organisers. Exits 1 when a
check blocks the curriculum (status ``fail``), 0 otherwise.
"""

from __future__ import annotations

import json

from kit.cli import EXIT_FAILED, EXIT_OK, command_parser


def main(argv: list[str]) -> int:
    from kit.machine import doctor

    parser = command_parser("doctor", __doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable report for organisers")
    args = parser.parse_args(argv)
    checks = doctor.run_checks()
    print(json.dumps(doctor.summary(checks), indent=2) if args.json else doctor.format_report(checks))
    return EXIT_FAILED if doctor.blocking(checks) else EXIT_OK
