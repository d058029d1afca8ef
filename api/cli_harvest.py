"""`papersearch harvest`: fetch an OAI-PMH repository's records into an index, then only what changed.

Exit status: 0 every record used, 3 some records rejected (listed on stderr) and the rest indexed,
1 the harvest stopped (the endpoint failed or is not OAI-PMH); rerunning resumes it.
"""

from __future__ import annotations

import argparse
import json
import sys

from api.cli_args import settings_from
from api.cli_errors import EXIT_OK, EXIT_SOME_REJECTED
from api.cli_index import check_room_to_write
from api.cli_output import report_counts
from indexer.sources.oai import PREFIXES  # light: the XML readers, no model

NAME = "harvest"
HELP = "Harvest an OAI-PMH repository (arXiv, DSpace, EPrints, OJS) into an index; rerun for what changed."
EXAMPLE = "papersearch harvest https://export.arxiv.org/oai2 --prefix arXiv --set cs --from 2024-01-01 --index ./arxiv"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="the repository's OAI-PMH base URL (e.g. https://export.arxiv.org/oai2)")
    p.add_argument("--set", dest="set_spec", metavar="SET", help="only this set (setSpec), e.g. cs or physics:hep-th")
    p.add_argument("--from", dest="from_date", metavar="DATE",
                   help="only records changed on or after DATE (YYYY-MM-DD); default: since the last harvest")
    p.add_argument("--prefix", choices=PREFIXES, default="oai_dc",
                   help="metadata format to ask for (default oai_dc; arXiv for arXiv's richer records)")


def run(args: argparse.Namespace) -> int:
    from indexer.harvest import harvest

    settings = settings_from(args)
    check_room_to_write(settings)
    report = harvest(settings, args.url, prefix=args.prefix, set_spec=args.set_spec, from_date=args.from_date,
                     on_reject=lambda r: print(r, file=sys.stderr),
                     on_note=None if args.quiet else (lambda text: print(text, file=sys.stderr)))
    if args.json:
        print(json.dumps({"url": args.url, "pages": report.pages, "from": report.from_date,
                          "datestamp": report.datestamp, **report_counts(report.index)}))
    else:
        print(f"{args.url}: {report.summary()}", file=sys.stderr if args.quiet else sys.stdout)
    return EXIT_SOME_REJECTED if report.index.rejected else EXIT_OK
