"""``python -m kit crds ensure|check|fetch|urls``: the pinned upstream CRD files ``python -m kit validate`` reads.

``ensure`` (what ``make lab`` and ``make test`` run) does nothing when the CRD directory found
($KIT_CRD_DIR, ../shared/crds, build/crds) holds every file of the lock unchanged, and downloads
them into build/crds when none is found; ``check`` exits 1 unless the files are there and match;
``fetch`` downloads them (again); ``urls`` lists each file's URL and SHA-256, to copy them by hand
onto an offline machine. Each download is checked against kit.versions.CRD_SHA256 before it lands.
"""

from __future__ import annotations

from pathlib import Path

from kit.cli import EXIT_OK, command_parser


def main(argv: list[str]) -> int:
    from kit.k8s.validation import crd_fetch, crds
    from kit.versions import CRD_SHA256

    parser = command_parser("crds", __doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("ensure", help="download the CRDs into build/crds unless a directory with all of them is found")
    sub.add_parser("check", help="exit 1 unless a CRD directory holds every pinned file, unchanged")
    fetch = sub.add_parser("fetch", help="download and verify the pinned CRD files")
    fetch.add_argument("--dest", type=Path, metavar="DIR",
                       help=f"where to write them (default: ${crds.CRD_DIR_ENV} when set, else build/crds)")
    sub.add_parser("urls", help="each file's URL at its pinned tag, and its SHA-256")
    args = parser.parse_args(argv)

    if args.action == "ensure":
        print(crd_fetch.ensure())
    elif args.action == "check":
        directory = crds.find_crd_dir()  # none found: a CRDDirNotFoundError with its fix, exit 1
        problems = crd_fetch.lock_problems(directory)
        if problems:
            raise crd_fetch.lock_error(directory, problems)
        print(crd_fetch.Ensured(directory, crds.origin_of(directory), downloaded=False))
    elif args.action == "fetch":
        written = crd_fetch.fetch(args.dest)
        print(f"downloaded and verified {len(written)} files in {written[0].parent}")
    else:
        for name, url in crd_fetch.crd_urls().items():
            print(f"{name}  {CRD_SHA256[name]}  {url}")
    return EXIT_OK
