"""Character sets: the Python codec mysql-replication decodes each character set id with.

This module owns the table from a column's character set id (as a TABLE_MAP
event's optional metadata gives it, :mod:`wpcdc.core.table_map`) to the codec
name the library uses for it, copied from the library's constants/CHARSET.py
(``Charset.encoding``) so that the fast decoder decodes text as the library
does: ``"utf8"``, ``"cp1252"`` for MySQL's latin1, ``"binary"``, ... MySQL and
MariaDB number their collations differently, so each flavor has its table.
Pure: no I/O.
"""

from __future__ import annotations


def _encodings(table: dict[str, str]) -> dict[int, str]:
    result = {}
    for encoding, ranges in table.items():
        for part in ranges.split():
            first, _, last = part.partition("-")
            for charset_id in range(int(first), int(last or first) + 1):
                result[charset_id] = encoding
    return result


# The Python codec the library uses for each character set id (its
# constants/CHARSET.py `Charset.encoding`), as id ranges per codec.
_MYSQL_CHARSETS = {
    "armscii8": "32 64",
    "ascii": "11 65",
    "big5": "1 84",
    "binary": "63",
    "cp1250": "26 34 44 66 99",
    "cp1251": "14 23 50-52",
    "cp1252": "5 8 15 31 47-49 94",
    "cp1256": "57 67",
    "cp1257": "29 58-59",
    "cp850": "4 80",
    "cp852": "40 81",
    "cp866": "36 68",
    "cp932": "95-96",
    "dec8": "3 69",
    "eucjpms": "97-98",
    "euckr": "19 85",
    "gb18030": "248-250",
    "gb2312": "24 86",
    "gbk": "28 87",
    "geostd8": "92-93",
    "greek": "25 70",
    "hebrew": "16 71",
    "hp8": "6 72",
    "keybcs2": "37 73",
    "koi8_r": "7 74",
    "koi8_u": "22 75",
    "latin2": "2 9 21 27 77",
    "latin5": "30 78",
    "latin7": "20 41-42 79",
    "macce": "38 43",
    "macroman": "39 53",
    "sjis": "13 88",
    "swe7": "10 82",
    "tis620": "18 89",
    "ucs2": "35 90 128-151 159",
    "ujis": "12 91",
    "utf16": "54-55 101-124",
    "utf16le": "56 62",
    "utf32": "60-61 160-183",
    "utf8": "33 45-46 76 83 192-215 223-247 255-271 273-275 277-294 296-298 300 303-323",
}
_MARIADB_CHARSETS = {
    "armscii8": "32 64 1056 1088",
    "ascii": "11 65 1035 1089",
    "big5": "1 84 1025 1108",
    "binary": "63",
    "cp1250": "26 34 44 66 99 1050 1090",
    "cp1251": "14 23 50-52 1074-1075",
    "cp1252": "5 8 15 31 47-49 94 1032 1071",
    "cp1256": "57 67 1081 1091",
    "cp1257": "29 58-59 1082-1083",
    "cp850": "4 80 1028 1104",
    "cp852": "40 81 1064 1105",
    "cp866": "36 68 1060 1092",
    "cp932": "95-96 1119-1120",
    "dec8": "3 69 1027 1093",
    "eucjpms": "97-98 1121-1122",
    "euckr": "19 85 1043 1109",
    "gb2312": "24 86 1048 1110",
    "gbk": "28 87 1052 1111",
    "geostd8": "92-93 1116-1117",
    "greek": "25 70 1049 1094",
    "hebrew": "16 71 1040 1095",
    "hp8": "6 72 1030 1096",
    "keybcs2": "37 73 1061 1097",
    "koi8_r": "7 74 1031 1098",
    "koi8_u": "22 75 1046 1099",
    "latin2": "2 9 21 27 77 1033 1101",
    "latin5": "30 78 1054 1102",
    "latin7": "20 41-42 79 1065 1103",
    "macce": "38 43 1062 1067",
    "macroman": "39 53 1063 1077",
    "sjis": "13 88 1037 1112",
    "swe7": "10 82 1034 1106",
    "tis620": "18 89 1042 1113",
    "ucs2": "35 90 128-151 159 640-642 1059 1114 1152 1174",
    "ujis": "12 91 1036 1115",
    "utf16": "54-55 101-124 672-674 1078-1079 1125 1147",
    "utf16le": "56 62 1080 1086",
    "utf32": "60-61 160-183 736-738 1084-1085 1184 1206",
    "utf8": "33 45-46 83 192-215 223-247 576-578 608-610 1057 1069-1070 1107 1216 1238 1248 1270",
}

_MYSQL_ENCODINGS = _encodings(_MYSQL_CHARSETS)
_MARIADB_ENCODINGS = _encodings(_MARIADB_CHARSETS)


def python_encoding(charset_id: int, *, mariadb: bool) -> str:
    """The Python codec the library decodes a column of character set
    ``charset_id`` with, on MariaDB or MySQL (whose ids differ above 255)."""
    table = _MARIADB_ENCODINGS if mariadb else _MYSQL_ENCODINGS
    # The library decodes a character set it does not know as UTF-8.
    return table.get(charset_id, "utf8")
