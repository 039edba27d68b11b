"""The YAML dialect of Kubernetes: every plain scalar form, key and merge as sigs.k8s.io/yaml reads them.

Kubernetes (kubectl and the API server) turns YAML into JSON with sigs.k8s.io/yaml's YAMLToJSON, which decodes
with go-yaml v2, and the API server reads that JSON with sigs.k8s.io/json's PreserveInts. The tables below give,
for each input, the JSON YAMLToJSON produced when the Go code itself was run on it (go.yaml.in/yaml/v2 v2.4.4,
sigs.k8s.io/yaml v1.6.0, sigs.k8s.io/json; the harness and the full table with PyYAML's results are in the
research note of issue 19, whose row numbers these are). The loader must give the value that JSON decodes to with
PreserveInts: an int where the number has no "." and fits int64, a float otherwise.

Sources, cited per row:
- R:n, D:n, T2:n: resolve.go, decode.go, decode_test.go of go-yaml v2 (github.com/yaml/go-yaml tag v2.4.2,
  246a95c22c57f15ef6d3305a1f1b8a0b05e4d560; both files unchanged at v2.4.4, 43b627a9da72517e91dbcf07cd10dfd6618423d8,
  the go.yaml.in/yaml/v2 that sigs.k8s.io/yaml v1.6.0 and k8s.io/apimachinery resolve to).
- S:n and TS:"case": yaml.go and a yaml_test.go case of sigs.k8s.io/yaml v1.6.0
  (048d724aca2d37ddb5b03c90b5b4550a3a48766d); S:216-248 turns keys into strings, S:174 json.Marshal.
- J: sigs.k8s.io/json internal/golang/encoding/json/decode.go convertNumber (PreserveInts).
- kubectl sniffs JSON: k8s.io/apimachinery pkg/util/yaml/decoder.go GuessJSONStream/hasJSONPrefix.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
import yaml

from tbyte_policy.audit import AuditOptions, audit_documents
from tbyte_policy.catalogue import load_catalogue
from tbyte_policy.config import ConfigError, load_config
from tbyte_policy.marked import MarkedDict, MarkingLoader
from tbyte_policy.sources.yaml_documents import load_text

VALUES = [  # (row, the scalar after `v: `, the JSON YAMLToJSON gives for it, source)
    # Integers: every "_" removed, then strconv.ParseInt(s, 0, 64) (0x, 0o, 0b, a leading 0 for octal), then
    # ParseUint (2^63..2^64-1: float64 after PreserveInts), then the float syntax (08 and larger numbers are floats)
    (1, '0', '0', 'R:150-157'),
    (2, '1', '1', 'R:150-157'),
    (3, '-1', '-1', 'R:150-157'),
    (4, '+1', '1', 'R:150-157; T2:118 (decimal: +685_230)'),
    (5, '42', '42', 'R:150-157'),
    (6, '0777', '511', 'R:150-157; T2:121 (octal: 02472256→685230)'),
    (7, '-0777', '-511', 'R:150-157'),
    (8, '+0777', '511', 'R:150-157'),
    (9, '0o777', '511', 'R:150-157'),
    (10, '0O777', '511', 'R:150-157'),
    (11, '-0o777', '-511', 'R:150-157'),
    (12, '0x1F', '31', 'R:150-157; T2:45 (v: 0xA), T2:124 (hexa: 0x_0A_74_AE)'),
    (13, '0X1F', '31', 'R:150-157'),
    (14, '-0x1F', '-31', 'R:150-157'),
    (15, '+0x1F', '31', 'R:150-157'),
    (16, '0x1f', '31', 'R:150-157'),
    (17, '0b101', '5', 'R:150-157; T2:42 (v: 0b10→2), T2:127'),
    (18, '0B101', '5', 'R:150-157'),
    (19, '-0b101', '-5', 'R:150-157; T2:130'),
    (20, '+0b101', '5', 'R:150-157'),
    (21, '1_000', '1000', 'R:150-157; T2:118'),
    (22, '1__000', '1000', 'R:150-157'),
    (23, '0x_1F', '31', 'R:150-157'),
    (24, '0b1_01', '5', 'R:150-157'),
    (25, '0_777', '511', 'R:150-157'),
    (26, '_1000', '"_1000"', 'R:114-118 (hint 0) → R:196'),
    (27, '1000_', '1000', 'R:150-157'),
    (28, '-0', '0', 'R:150-157'),
    (29, '+0', '0', 'R:150-157'),
    (30, '00', '0', 'R:150-157'),
    (31, '08', '8', 'R:84, R:163-166'),
    (32, '09', '9', 'R:84, R:163-166'),
    (33, '0o8', '"0o8"', 'R:150-167 all fail → R:196'),
    (34, '0xG', '"0xG"', 'R:150-167 all fail → R:196'),
    (35, '9223372036854775807', '9223372036854775807', 'R:150-157'),
    (36, '9223372036854775808', '9223372036854775808', 'R:159-161; T2:288'),
    (37, '-9223372036854775808', '-9223372036854775808', 'R:150-157'),
    (38, '-9223372036854775809', '-9223372036854776000', 'R:84, R:163-166'),
    (39, '18446744073709551615', '18446744073709551615', 'R:159-161; T2:334'),
    (40, '18446744073709551616', '18446744073709552000', 'R:84, R:163-166'),
    (41, '99999999999999999999', '100000000000000000000', 'R:84, R:163-166; TS:"integer value (1e36)"'),
    (42, '123456789012345678901234567890', '1.2345678901234568e+29', 'R:84, R:163-166; TS:"integer value (1e36)"'),
    (43, '012345678', '12345678', 'R:84, R:163-166'),
    (44, '0777777777777777777777777', '7.777777777777778e+23', 'R:84, R:163-166'),
    (45, '0x8000000000000000', '9223372036854775808', 'R:159-161'),
    (46, '0xFFFFFFFFFFFFFFFFF', '"0xFFFFFFFFFFFFFFFFF"', 'R:150-167 all fail → R:196'),
    (47, '0x', '"0x"', 'R:150-167 all fail → R:196'),
    (48, '0b2', '"0b2"', 'R:150-167 all fail → R:196'),
    (49, '-0x0', '0', 'R:150-157'),
    (50, '1_000e3', '1000000', 'R:84, R:163-166'),
    # Floats: yamlStyleFloat needs no dot and no exponent sign; ParseFloat's range error leaves a string. Through
    # JSON an integral float64 below 1e21 is written without a fraction, so the API server reads an integer
    (51, '1.5', '1.5', 'R:84, R:163-166'),
    (52, '-1.5', '-1.5', 'R:84, R:163-166'),
    (53, '+1.5', '1.5', 'R:84, R:163-166'),
    (54, '1e3', '1000', 'R:84, R:163-166'),
    (55, '1E3', '1000', 'R:84, R:163-166'),
    (56, '1e+3', '1000', 'R:84, R:163-166'),
    (57, '1e-3', '0.001', 'R:84, R:163-166'),
    (58, '-1e3', '-1000', 'R:84, R:163-166'),
    (59, '1.0', '1', 'R:84, R:163-166'),
    (60, '1.0e3', '1000', 'R:84, R:163-166'),
    (61, '1.0e+3', '1000', 'R:84, R:163-166'),
    (62, '1.0E+3', '1000', 'R:84, R:163-166'),
    (63, '6.8523015e+5', '685230.15', 'R:84, R:163-166; T2:78 (6.8523e+5)'),
    (64, '685.230_15e+03', '685230.15', 'R:84, R:163-166; T2:81'),
    (65, '685_230.15', '685230.15', 'R:84, R:163-166; T2:84'),
    (66, '.5', '0.5', 'R:132-136; T2:54 (v: .1)'),
    (67, '-.5', '-0.5', 'R:84, R:163-166'),
    (68, '+.5', '0.5', 'R:84, R:163-166'),
    (69, '.5e3', '500', 'R:132-136'),
    (70, '1.', '1', 'R:84, R:163-166'),
    (71, '-1.', '-1', 'R:84, R:163-166'),
    (72, '0.0', '0', 'R:84, R:163-166'),
    (73, '-0.0', '-0', 'R:84, R:163-166'),
    (74, '1_000.5', '1000.5', 'R:84, R:163-166'),
    (75, '1e20', '100000000000000000000', 'R:84, R:163-166'),
    (76, '1e21', '1e+21', 'R:84, R:163-166'),
    (77, '1e-7', '1e-7', 'R:84, R:163-166'),
    (78, '1.7976931348623157e308', '1.7976931348623157e+308', 'R:84, R:163-166'),
    (79, '1e309', '"1e309"', 'R:150-167 all fail → R:196'),
    (80, '-1e309', '"-1e309"', 'R:150-167 all fail → R:196'),
    (81, '0.1', '0.1', 'R:84, R:163-166'),
    (82, '3.14159265358979323846', '3.141592653589793', 'R:84, R:163-166'),
    (83, '2.5e-324', '5e-324', 'R:84, R:163-166'),
    (84, '1e', '"1e"', 'R:150-167 all fail → R:196'),
    (85, 'e3', '"e3"', 'R:114-118 (hint 0) → R:196'),
    (86, '1.5.5', '"1.5.5"', 'R:150-167 all fail → R:196'),
    (87, '0x1p-2', '"0x1p-2"', 'R:150-167 all fail → R:196'),
    (88, '1,000', '"1,000"', 'R:150-167 all fail → R:196'),
    (89, '.5_0', '0.5', 'R:132-136'),
    (90, '._5', '"._5"', 'R:132-136 fails → R:196'),
    (91, '0.', '0', 'R:84, R:163-166'),
    (92, '1_000.5e3', '1000500', 'R:84, R:163-166'),
    (93, '.', '"."', 'R:132-136 fails → R:196'),
    (94, '+', '"+"', 'R:150-167 all fail → R:196'),
    (95, '..5', '"..5"', 'R:132-136 fails → R:196'),
    (105, '.iNf', '".iNf"', 'R:132-136 fails → R:196'),
    (109, '.nAn', '".nAn"', 'R:132-136 fails → R:196'),
    (110, 'inf', '"inf"', 'R:114-118 (hint 0) → R:196'),
    (111, 'Inf', '"Inf"', 'R:114-118 (hint 0) → R:196'),
    (112, '+inf', '"+inf"', 'R:150-167 all fail → R:196'),
    (113, '-inf', '"-inf"', 'R:150-167 all fail → R:196'),
    (114, 'Infinity', '"Infinity"', 'R:114-118 (hint 0) → R:196'),
    (115, 'nan', '"nan"', 'R:27-28, R:129-130 → R:196'),
    (116, 'NaN', '"NaN"', 'R:27-28, R:129-130 → R:196'),
    # Base 60: unsupported on purpose (R:124-126), so these are strings (PyYAML reads 12:30 as 750)
    (117, '12:30', '"12:30"', 'R:150-167 all fail → R:196; T2:551-554 (a: 1:1→"1:1"), T2:140'),
    (118, '1:20:30', '"1:20:30"', 'R:150-167 all fail → R:196'),
    (119, '-1:20:30', '"-1:20:30"', 'R:150-167 all fail → R:196'),
    (120, '+12:30', '"+12:30"', 'R:150-167 all fail → R:196'),
    (121, '190:20:30.15', '"190:20:30.15"', 'R:150-167 all fail → R:196; T2:93 (commented out: "Unsupported")'),
    (122, '12:30.5', '"12:30.5"', 'R:150-167 all fail → R:196'),
    (123, '12:60', '"12:60"', 'R:150-167 all fail → R:196'),
    (124, '09:30', '"09:30"', 'R:150-167 all fail → R:196'),
    (125, '1_0:30', '"1_0:30"', 'R:150-167 all fail → R:196'),
    (126, '0:30', '"0:30"', 'R:150-167 all fail → R:196'),
    (127, '12:30:00', '"12:30:00"', 'R:150-167 all fail → R:196'),
    # Booleans: YAML 1.1's, with y/Y/n/N, in exactly these spellings
    (128, 'true', 'true', 'R:37-48, R:120-121'),
    (129, 'True', 'true', 'R:37-48, R:120-121; T2:104; TS:"boolean value"'),
    (130, 'TRUE', 'true', 'R:37-48, R:120-121'),
    (131, 'tRUE', '"tRUE"', 'R:27-28, R:129-130 → R:196'),
    (132, 'false', 'false', 'R:37-48, R:120-121'),
    (133, 'False', 'false', 'R:37-48, R:120-121'),
    (134, 'FALSE', 'false', 'R:37-48, R:120-121'),
    (135, 'yes', 'true', 'R:37-48, R:120-121'),
    (136, 'Yes', 'true', 'R:37-48, R:120-121'),
    (137, 'YES', 'true', 'R:37-48, R:120-121'),
    (138, 'yEs', '"yEs"', 'R:27-28, R:129-130 → R:196'),
    (139, 'no', 'false', 'R:37-48, R:120-121; TS:"boolean value (no)"'),
    (140, 'No', 'false', 'R:37-48, R:120-121'),
    (141, 'NO', 'false', 'R:37-48, R:120-121; T2:101'),
    (142, 'on', 'true', 'R:37-48, R:120-121; T2:107'),
    (143, 'On', 'true', 'R:37-48, R:120-121'),
    (144, 'ON', 'true', 'R:37-48, R:120-121'),
    (145, 'oN', '"oN"', 'R:27-28, R:129-130 → R:196'),
    (146, 'off', 'false', 'R:37-48, R:120-121'),
    (147, 'Off', 'false', 'R:37-48, R:120-121'),
    (148, 'OFF', 'false', 'R:37-48, R:120-121'),
    (149, 'y', 'true', 'R:37-48, R:120-121; T2:98 (canonical: y→true)'),
    (150, 'Y', 'true', 'R:37-48, R:120-121'),
    (151, 'n', 'false', 'R:37-48, R:120-121'),
    (152, 'N', 'false', 'R:37-48, R:120-121'),
    (153, 't', '"t"', 'R:27-28, R:129-130 → R:196'),
    (154, 'f', '"f"', 'R:27-28, R:129-130 → R:196'),
    # Null
    (155, '~', 'null', 'R:37-48, R:120-121'),
    (156, 'null', 'null', 'R:37-48, R:120-121; TS:"null value"'),
    (157, 'Null', 'null', 'R:37-48, R:120-121'),
    (158, 'NULL', 'null', 'R:37-48, R:120-121'),
    (159, 'nULL', '"nULL"', 'R:27-28, R:129-130 → R:196'),
    (160, '', 'null', 'R:37-48, R:120-121; TS:"empty yaml value"'),
    # Timestamps: go-yaml hands a timestamp back as its source text when decoding into interface{}
    (161, '2001-12-14', '"2001-12-14"', 'R:143-146, R:226-231; D:474-480; T2:661-663'),
    (162, '2001-12-14t21:59:43.10-05:00', '"2001-12-14t21:59:43.10-05:00"', 'R:143-146, R:226-231; D:474-480; T2:615'),
    (163, '2001-12-14T21:59:43.10-05:00', '"2001-12-14T21:59:43.10-05:00"', 'R:143-146, R:226-231; D:474-480'),
    (164, '2001-12-14T21:59:43.10Z', '"2001-12-14T21:59:43.10Z"', 'R:143-146, R:226-231; D:474-480'),
    (165, '2001-12-15T02:59:43.1Z', '"2001-12-15T02:59:43.1Z"', 'R:143-146, R:226-231; D:474-480'),
    (166, '2001-12-14 21:59:43.10 -5', '"2001-12-14 21:59:43.10 -5"', 'R:150-167 all fail → R:196; T2:625-629'),
    (167, '2001-12-14 21:59:43.10', '"2001-12-14 21:59:43.10"', 'R:143-146, R:226-231; D:474-480'),
    (168, '2001-12-14 21:59:43.10Z', '"2001-12-14 21:59:43.10Z"', 'R:150-167 all fail → R:196'),
    (169, '2001-1-2', '"2001-1-2"', 'R:143-146, R:226-231; D:474-480'),
    (170, '2001-13-45', '"2001-13-45"', 'R:150-167 all fail → R:196'),
    (171, '2001-12-14T21:59:43', '"2001-12-14T21:59:43"', 'R:150-167 all fail → R:196'),
    (172, '20011-12-14', '"20011-12-14"', 'R:150-167 all fail → R:196'),
    # `=` and `<<` as values are strings; tags: !!str, !!binary and the resolvable tags (which must fit the value,
    # !!float taking an int); any other tag, `!` included, leaves the text. Quoted scalars are strings.
    (173, '=', '"="', 'R:114-118 (hint 0) → R:196'),
    (174, '<<', '"\\u003c\\u003c"', 'R:114-118 (hint 0) → R:196'),
    (175, '!!binary aGVsbG8=', '"hello"', 'R:87-88, D:419-425; T2:559; TS:"binary data"'),
    (176, '!!binary /w==', '"\\ufffd"', 'R:87-88, D:419-425'),
    (178, '!!str 123', '"123"', 'R:76-110; T2:637 (!!str 2015-01-01)'),
    (179, '!!str true', '"true"', 'R:76-110'),
    (180, '!!str ~', '"~"', 'R:76-110'),
    (181, '!!int "12"', '12', 'R:76-110'),
    (182, '!!int 12', '12', 'R:76-110'),
    (184, '!!int 0x1F', '31', 'R:76-110'),
    (186, '!!float 1', '1', 'R:76-110; T2:409-413'),
    (187, '!!float "1.5"', '1.5', 'R:76-110; T2:406'),
    (189, '!!float 1e3', '1000', 'R:76-110'),
    (190, '!!bool yes', 'true', 'R:76-110'),
    (191, '!!bool "true"', 'true', 'R:76-110'),
    (193, '!!null ""', 'null', 'R:76-110'),
    (194, '!!null ~', 'null', 'R:76-110'),
    (196, '!!timestamp 2001-12-14', '"2001-12-14"', 'R:76-110; T2:656-658'),
    (198, '!foo 123', '"123"', 'R:76-110'),
    (199, '!foo bar', '"bar"', 'R:76-110'),
    (200, '! 123', '"123"', 'R:76-110; T2:422-425 (v: ! test)'),
    (201, '!!foo 123', '"123"', 'R:76-110'),
    (202, '!!merge <<', '"\\u003c\\u003c"', 'R:76-110'),
    (203, '!!value =', '"="', 'R:76-110'),
    (204, "'123'", '"123"', 'D:414-416 (quoted → !!str)'),
    (205, '"true"', '"true"', 'D:414-416 (quoted → !!str)'),
    (206, "'~'", '"~"', 'D:414-416 (quoted → !!str)'),
    (207, '""', '""', 'D:414-416 (quoted → !!str)'),
]
DOCUMENTS = [  # (row, the YAML document, the JSON YAMLToJSON gives for it, source)
    # Keys: an int becomes its decimal digits, a bool true/false, a float strconv.FormatFloat(f, 'g', -1, 32)
    (208, '1: x', '{"1":"x"}', 'R:150-157; S:216-248; TS:"integer key"'),
    (209, '-1: x', '{"-1":"x"}', 'R:150-157; S:216-248'),
    (210, '0777: x', '{"511":"x"}', 'R:150-157; S:216-248'),
    (211, '0o777: x', '{"511":"x"}', 'R:150-157; S:216-248'),
    (212, '0x1F: x', '{"31":"x"}', 'R:150-157; S:216-248'),
    (213, '1_000: x', '{"1000":"x"}', 'R:150-157; S:216-248'),
    (214, '1.5: x', '{"1.5":"x"}', 'R:84, R:163-166; S:216-248; TS:"float key"'),
    (215, '1e3: x', '{"1000":"x"}', 'R:84, R:163-166; S:216-248; TS:"large integer key (scientific notation)"'),
    (216, '0.1: x', '{"0.1":"x"}', 'R:84, R:163-166; S:216-248'),
    (217, '3.14159265358979: x', '{"3.1415927":"x"}', 'R:84, R:163-166; S:216-248'),
    (218, '123456789.5: x', '{"1.2345679e+08":"x"}', 'R:84, R:163-166; S:216-248'),
    (219, '1e20: x', '{"1e+20":"x"}', 'R:84, R:163-166; S:216-248'),
    (220, '.inf: x', '{".inf":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (221, '-.inf: x', '{"-.inf":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (222, '.nan: x', '{".nan":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (223, 'true: x', '{"true":"x"}', 'R:37-48, R:120-121; S:216-248; TS:"boolean key"'),
    (224, 'false: x', '{"false":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (225, 'yes: x', '{"true":"x"}', 'R:37-48, R:120-121; S:216-248; TS:"...boolean key (yes)"'),
    (226, 'no: x', '{"false":"x"}', 'R:37-48, R:120-121; S:216-248; TS:"boolean key (no)"'),
    (227, 'on: x', '{"true":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (228, 'off: x', '{"false":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (229, 'y: x', '{"true":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (230, 'n: x', '{"false":"x"}', 'R:37-48, R:120-121; S:216-248'),
    (233, '2001-12-14: x', '{"2001-12-14":"x"}', 'R:143-146, R:226-231; D:474-480; S:216-248'),
    (234, '12:30: x', '{"12:30":"x"}', 'R:150-167 all fail → R:196; S:216-248'),
    (235, '9223372036854775807: x', '{"9223372036854775807":"x"}', 'R:150-157; S:216-248'),
    (238, '99999999999999999999: x', '{"1e+20":"x"}', 'R:84, R:163-166; S:216-248; TS:"large integer key"'),
    (239, '=: x', '{"=":"x"}', 'R:114-118 (hint 0) → R:196; S:216-248'),
    (240, '!!binary aGVsbG8=: x', '{"hello":"x"}', 'R:87-88, D:419-425; S:216-248'),
    # Duplicate keys. Row 244 is nondeterministic in Go (convertToJSONableObject ranges over a Go map: 27 runs
    # in 30 gave {"1":"b"}); the scanner keeps the last, as for any duplicate key
    (244, '1: a\n"1": b', '{"1":"b"}', 'S:213-249'),
    (245, 'true: a\nyes: b', '{"true":"b"}', 'S:213-249'),
    (246, 'a: 1\na: 2', '{"a":2}', 'S:213-249'),
    # Merge keys: applied where `<<` stands, into the same map, so later pairs win; the first map of a list wins
    (247, 'base: &b {a: 1, b: 2}\nv:\n  <<: *b\n  b: 3', '{"base":{"a":1,"b":2},"v":{"a":1,"b":3}}',
     'D:661-665, D:786-815; T2:1095-1168'),
    # ... so a key written before `<<` is overwritten by the merged value (PyYAML lets it win)
    (248, 'base: &b {a: 1, b: 2}\nv:\n  b: 3\n  <<: *b', '{"base":{"a":1,"b":2},"v":{"a":1,"b":2}}',
     'D:661-665, D:786-815'),
    (249, 'v:\n  <<: [{a: 1}, {a: 2}]', '{"v":{"a":1}}', 'D:661-665, D:786-815'),
    (250, 'v:\n  <<: {a: 1}\n  c: 2', '{"v":{"a":1,"c":2}}', 'D:661-665, D:786-815'),
    (252, 'v:\n  "<<": 1', '{"v":{"\\u003c\\u003c":1}}', 'D:661-665, D:786-815'),
    (253, 'v:\n  !!str <<: 1', '{"v":{"\\u003c\\u003c":1}}', 'D:661-665, D:786-815'),
]

# Documents YAMLToJSON refuses: the scanner reports each as an input error on its line, and no object.
ERRORS = [  # (row, the YAML document, its line of the error, the scanner's message after "invalid YAML: ")
    # json: unsupported value: +Inf / -Inf / NaN (R:37-48, R:120-121; S:174, Go encoding/json encode.go:576-577)
    *((row, f"v: {text}", 1, "an infinite or NaN number (.inf, .nan): Kubernetes cannot convert it to JSON and "
                             "refuses the document; quote it for a string")
      for row, text in ((96, ".inf"), (97, ".Inf"), (98, ".INF"), (99, "+.inf"), (100, "+.Inf"), (101, "+.INF"),
                        (102, "-.inf"), (103, "-.Inf"), (104, "-.INF"), (106, ".nan"), (107, ".NaN"),
                        (108, ".NAN"))),
    # yaml: !!binary value contains invalid base64 data (D:419-425; T2:865)
    (177, "v: !!binary not base64!", 1, "a !!binary value is not valid base64"),
    # yaml: cannot decode !!float `1.5` as a !!int, and so on (R:76-110); the value is never quoted
    (183, "v: !!int 1.5", 1, "a value does not fit its explicit YAML tag !!int"),
    (185, "v: !!int abc", 1, "a value does not fit its explicit YAML tag !!int"),
    (188, "v: !!float abc", 1, "a value does not fit its explicit YAML tag !!float"),
    (192, "v: !!bool 1", 1, "a value does not fit its explicit YAML tag !!bool"),
    (195, "v: !!null x", 1, "a value does not fit its explicit YAML tag !!null"),
    (197, "v: !!timestamp x", 1, "a value does not fit its explicit YAML tag !!timestamp"),
    # unsupported map key of type: %!s(<nil>) / uint64 (S:216-248; TS:"null key", TS:"~ key")
    *((row, document, 1, "a null mapping key: Kubernetes cannot convert it to JSON and refuses the document "
                         "(unsupported map key)")
      for row, document in ((231, "null: x"), (232, "~: x"), (243, "? \n: x"))),
    *((row, document, 1, "a mapping key that is an integer of 2^63 or more: Kubernetes cannot convert it to JSON "
                         "and refuses the document (unsupported map key)")
      for row, document in ((236, "9223372036854775808: x"), (237, "18446744073709551615: x"))),
    # yaml: invalid map key (D:666-674; T2:866)
    (241, "[1, 2]: x", 1, "while constructing a mapping: found unhashable key"),
    (242, "{a: 1}: x", 1, "while constructing a mapping: found unhashable key"),
    # yaml: map merge requires map or sequence of maps as the value (D:786-815; T2:863)
    (251, "v:\n  <<: 1", 2, "a merge key (<<) needs a mapping or a list of mappings"),
    (254, "v:\n  <<: ~", 2, "a merge key (<<) needs a mapping or a list of mappings"),
    (0, "a: &x null\n<<:\n- *x", 2, "a merge key (<<) needs a mapping or a list of mappings"),  # T2:863
    # D:790-794: an alias as the value must be to a mapping, even where a list of mappings would do
    (0, "l: &l [{a: 1}]\nm:\n  <<: *l", 3, "a merge key (<<) needs a mapping or a list of mappings"),
]

_INT64 = range(-(1 << 63), 1 << 63)


def as_the_api_server_reads(json_text: str) -> Any:
    # J convertNumber: a number without "." that ParseInt(s, 10, 64) takes is an int64, any other a float64.
    return json.loads(json_text, parse_int=lambda digits: int(digits) if int(digits) in _INT64 else float(digits))


def assert_same(loaded: Any, expected: Any) -> None:
    """Equal, and of the same JSON type at every level (1 and 1.0 differ, True and 1 differ)."""
    if isinstance(expected, dict):  # (json.Marshal sorts a map's keys: their order means nothing)
        assert isinstance(loaded, dict) and sorted(loaded) == sorted(expected), (loaded, expected)
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, list):
        assert isinstance(loaded, list) and len(loaded) == len(expected), (loaded, expected)
        for item, wanted in zip(loaded, expected, strict=True):
            assert_same(item, wanted)
    else:
        assert type(loaded) is type(expected) and loaded == expected, (loaded, expected)


def load(document: str) -> Any:
    return yaml.load(document, Loader=MarkingLoader)


@pytest.mark.parametrize(("row", "scalar", "kubernetes_json", "source"), VALUES, ids=[f"row{row[0]}" for row in VALUES])
def test_each_scalar_form_is_the_value_kubernetes_decodes(row, scalar, kubernetes_json, source):
    assert_same(load(f"v: {scalar}"), {"v": as_the_api_server_reads(kubernetes_json)})


@pytest.mark.parametrize(("row", "document", "kubernetes_json", "source"), DOCUMENTS,
                         ids=[f"row{row[0]}" for row in DOCUMENTS])
def test_keys_duplicates_and_merges_are_the_object_kubernetes_decodes(row, document, kubernetes_json, source):
    assert_same(load(document), as_the_api_server_reads(kubernetes_json))


@pytest.mark.parametrize(("row", "document", "line", "message"), ERRORS, ids=[f"row{row[0]}" for row in ERRORS])
def test_documents_kubernetes_refuses_are_input_errors_on_their_line(row, document, line, message):
    # As `kubectl apply` refuses the file, the scanner reports the document (file and line) and keeps it out.
    header = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: refused\ndata:\n"
    result = load_text(header + textwrap.indent(document, "  ", lambda _: True) + "\n", "refused.yaml")
    assert result.documents == []
    assert [(error.path, error.line, error.message) for error in result.errors] == [
        ("refused.yaml", 5 + line, f"invalid YAML: {message}")]


CATALOGUE = {rule.id: rule for rule in load_catalogue()}


def schema_findings(text: str) -> tuple[list[tuple[int | None, str]], list[tuple[int | None, str]], Any]:
    loaded = load_text(textwrap.dedent(text), "manifest.yaml")
    report = audit_documents(loaded, AuditOptions(rules=[CATALOGUE["SCH001"].with_overrides(enabled=True)]))
    assert report.internal_errors == []
    return ([(finding.location.line, finding.message.split(" (Kubernetes")[0]) for finding in report.findings],
            [(error.line, error.message) for error in report.errors], loaded)


def test_the_issue_examples_read_as_kubernetes_reads_them():
    findings, errors, loaded = schema_findings("""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        data:
          BACKUP_AT: 12:30
          SEPARATOR: =
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: app}
        spec:
          containers: [{name: app, image: nginx:1.27}]
          volumes:
            - name: config
              configMap: {name: settings, defaultMode: 0o440}
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: flags
          labels: {enabled: y}
        data:
          VERBOSE: n
        """)
    settings, pod, flags = (document.body for document in loaded.documents)
    assert settings["data"] == {"BACKUP_AT": "12:30", "SEPARATOR": "="}
    assert pod["spec"]["volumes"][0]["configMap"]["defaultMode"] == 288
    assert flags["metadata"]["labels"] == {"enabled": True} and flags["data"] == {"VERBOSE": False}
    # y and n are booleans to Kubernetes, which refuses them in string fields: so does the schema rule.
    assert findings == [(21, "metadata.labels.enabled has the wrong type: expected a string"),
                        (23, "data.VERBOSE has the wrong type: expected a string")]
    assert errors == [(21, "ConfigMap/default/flags: metadata.labels.enabled must be a string, not a boolean")]


@pytest.mark.parametrize(("replicas", "loaded", "accepted"), [
    ("1e3", 1000, True), ("1.0", 1, True), ("1.", 1, True), ("08", 8, True), ("0o3", 3, True), ("0x3", 3, True),
    ("1.5", 1.5, False), ("1e-3", 0.001, False),
])
def test_integer_fields_accept_what_the_api_server_accepts(replicas, loaded, accepted):
    # An int32 field takes a JSON number that ParseInt(s, 10, 64) reads (J literalStore): 1e3 reaches it as 1000.
    findings, errors, result = schema_findings(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec: {{containers: [{{name: web, image: nginx:1.27}}]}}
        """)
    assert_same(result.documents[0].body["spec"]["replicas"], loaded)
    if accepted:
        assert (findings, errors) == ([], [])
    else:
        assert findings == [(5, "spec.replicas has the wrong type: expected an integer")]
        assert errors == [(5, "Deployment/default/web: spec.replicas must be an integer, not a number")]


@pytest.mark.parametrize("text", [
    '{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},\n "spec": {"replicas": 1.0}}\n',
    '\n  {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 1.0}}',
])
def test_json_text_keeps_its_numbers_as_written(text):
    # kubectl decodes a stream that starts with "{" as JSON, not through YAMLToJSON: 1.0 stays a float, which
    # an int32 field refuses.
    for path in ("deployment.json", "deployment.yaml"):
        assert_same(load_text(text, path).documents[0].body["spec"], {"replicas": 1.0})
    assert_same(load('{"a": 1, "b": 1e3, "c": 9223372036854775808, "d": true}'),
                {"a": 1, "b": 1000.0, "c": 9.223372036854776e18, "d": True})


@pytest.mark.parametrize(("scalar", "expected"), [
    ("0x" + "0" * 5000 + "1F", 31),  # ParseInt reads any number of leading zeros
    ("9" * 5000, "9" * 5000),  # past int64, uint64 and float64: ParseFloat's range error leaves a string
    ("0b" + "1" * 64, float(2 ** 64 - 1)),  # a uint64, which PreserveInts reads as a float64
    ("!!binary 4oI=", "\ufffd\ufffd"),  # a cut UTF-8 sequence: encoding/json replaces each byte (utf8.DecodeRune)
])
def test_extreme_numbers_and_bytes_load_as_go_decodes_them(scalar, expected):
    assert_same(load(f"v: {scalar}"), {"v": expected})


def test_a_cached_value_never_leaks_into_a_tagged_or_anchored_scalar():
    assert_same(load("a: 1e3\nb: ! 1e3\nc: !!str 1e3\nd: &n 1e3\ne: *n\nf: !!float 1e3\ng: 1e3\nh: &m ! 12\ni: *m"),
                {"a": 1000, "b": "1e3", "c": "1e3", "d": 1000, "e": 1000, "f": 1000, "g": 1000, "h": "12", "i": "12"})


def test_collection_tags_change_nothing():
    # decode.go unmarshal (D:350-376) decodes by node kind: a mapping is a map whatever its tag.
    assert_same(load("s: !!set {a, b}\no: !!omap [{a: 1}]\nf: !foo {a: 1}\nq: !!str [1]"),
                {"s": {"a": None, "b": None}, "o": [{"a": 1}], "f": {"a": 1}, "q": [1]})


def test_a_tag_with_no_value_is_refused_without_quoting_it():
    # Kubernetes would read `password: !s3cr3t` as "": the value was meant, so the scanner refuses the document.
    result = load_text("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  password: !s3cr3t\n",
                       "secret.yaml")
    assert result.documents == []
    assert [(error.line, error.message) for error in result.errors] == [
        (5, "invalid YAML: unknown tag (quote a value that starts with !)")]
    assert "s3cr3t" not in repr(result.errors)


def test_positions_survive_key_conversion_and_merges():
    document = load("base: &base\n  a: 1\n  b: 2\nv:\n  b: 0\n  <<: *base\n  c: 3\n1: one\ny: yes\n")
    assert isinstance(document, MarkedDict) and isinstance(document["v"], MarkedDict)
    assert [(key, document.key_position(key)) for key in document] == [
        ("base", (1, 1)), ("v", (4, 1)), ("1", (8, 1)), ("true", (9, 1))]
    # The merge overwrote b, so b is where the merged value was written.
    assert [(key, document["v"].key_position(key)) for key in document["v"]] == [
        ("b", (3, 3)), ("a", (2, 3)), ("c", (7, 3))]


def test_a_merge_of_the_mapping_itself_is_an_error_not_a_crash():
    with pytest.raises(yaml.YAMLError, match="refers to a mapping that contains it"):
        load("a: &a\n  x: 1\n  <<: *a\n")


def test_the_config_file_reads_the_same_dialect(tmp_path):
    config = tmp_path / ".tbyte-policy.yaml"
    config.write_text("max_file_size: 32e6\nexemptions:\n  - rule: PRB001\n    reason: vendor image (OPS-1)\n"
                      "    expires: 2027-03-31\n")
    loaded = load_config(config)
    assert loaded.max_file_size == 32_000_000 and str(loaded.exemptions[0].expires) == "2027-03-31"
    config.write_text("max_file_size: .inf\n")
    with pytest.raises(ConfigError, match=r"\.tbyte-policy\.yaml:1: invalid YAML in config"):
        load_config(config)
