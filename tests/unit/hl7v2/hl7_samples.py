"""Synthetic HL7 v2 messages shared by the hl7v2 tests (no real patient data)."""

from __future__ import annotations

ADT_A01_SEGMENTS = (
    "MSH|^~\\&|HIS_CHL|CHL^1.3.182.3.1.1.1.2^ISO|MPI|ESANTE|20240312101500+0100||ADT^A01^ADT_A01|"
    "MSG00001|P|2.5|||AL|NE||UNICODE UTF-8",
    "EVN|A01|20240312101500|||OP123^Muller^Anne",
    "PID|1||1982080285657^^^LUX&1.3.182.4.4&ISO^NI~A-4711^^^CHL&1.3.182.3.1.1.1.2&ISO^PI||"
    'Weber Schmit^Jean-Pierre^Jos^^^^L~Schmit^Jean-Pierre^^^^^M|""|19820802|M|||'
    "12 Rue de la Gare^^Esch-sur-Alzette^^L-4131^LU^H||+352621123456^PRN^CP",
    "PD1|||CHL^^1.3.182.3.1.1.1.2",
    "NK1|1|Weber^Marie^^^^^L|SPO^Spouse^HL70063|12 Rue de la Gare^^Esch-sur-Alzette^^L-4131^LU",
    "PV1|1|I|CHL^2B^12^CHL||||1234^Hoffmann^Paul^^^Dr|||MED||||7|||1234^Hoffmann^Paul^^^Dr|IN|V0001",
    "PV2|||^Chest pain",
    "OBX|1|NM|8302-2^Body height^LN||178|cm|||||F",
    "OBX|2|ST|11502-2^Lab report^LN||first line\\.br\\second line|||||F",
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Rash",
)
"""A realistic ten-segment ADT^A01 (ITI-30 style, HL7 2.5); PID-6 is the explicit null."""

ADT_A01 = ("\r".join(ADT_A01_SEGMENTS) + "\r").encode("utf-8")

ADT_A04_231 = (
    "MSH|^~\\&|LAB|HOSP_A|MPI|ESANTE|20240101120000||ADT^A04|CTRL-231|P|2.3.1\r"
    "EVN|A04|20240101120000\r"
    "PID|||77^^^HOSP_A||Dupont^Jean||19700101|M\r"
).encode("ascii")
"""A 2.3.1 ITI-8 feed message whose MSH-9 has only type and trigger."""
