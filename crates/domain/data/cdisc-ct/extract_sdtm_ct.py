"""Cuts the SDTM CT rows the trial design export needs out of NCI EVS's "SDTM Terminology.txt".

Usage: python3 extract_sdtm_ct.py "SDTM Terminology.txt" 2025-03-25 > sdtm-ct-extract-2025-03-25.csv
Keeps: the codelist rows of C66738 TSPARMCD, C67152 TSPARM and C66785 TCNTRL; every term of TCNTRL;
the TSPARMCD terms named below and the TSPARM terms sharing their C-codes. Fields are copied as read.
"""
import csv
import sys

TSPARMCD_USED = """TITLE REGID TPHASE STYPE TBLIND RANDOM NARMS PLANSUB ADDON TRT DOSE DOSU DOSFRQ ROUTE
DOSFRM COMPTRT CURTRT PCLAS AGEMIN AGEMAX SEXPOP HLTSUBJI INTMODEL INTTYPE TCNTRL TTYPE TINDTP INDIC
TDIGRP RDIND ADAPT STOPRULE SPONSOR FCNTRY LENGTH SSTDTC ACTSUB DCUTDTC DCUTDESC SENDTC SDTIGVER
SDTMVER OBJPRIM OBJSEC OBJEXP OUTMSPRI OUTMSSEC OUTMSEXP""".split()

source, date = sys.argv[1], sys.argv[2]
with open(source, encoding="utf-8", newline="") as handle:
    rows = list(csv.reader(handle, delimiter="\t"))
header, rows = rows[0], rows[1:]
parameter_codes = {row[0] for row in rows if row[1] == "C66738" and row[4] in TSPARMCD_USED}
missing = set(TSPARMCD_USED) - {row[4] for row in rows if row[1] == "C66738"}
if missing:
    sys.exit(f"not in C66738: {sorted(missing)}")
keep = [
    row
    for row in rows
    if (row[1] == "" and row[0] in ("C66738", "C67152", "C66785"))
    or row[1] == "C66785"
    or (row[1] in ("C66738", "C67152") and row[0] in parameter_codes)
]
out = csv.writer(sys.stdout, quoting=csv.QUOTE_ALL, lineterminator="\n")
out.writerow(header + ["Standard and Date"])
for row in keep:
    out.writerow(row + [f"SDTM CT {date}"])
