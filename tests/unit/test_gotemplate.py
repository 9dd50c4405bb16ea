"""berth.gotemplate against the values Go's text/template prints.

The expected strings were produced by Go 1.24's text/template through the docker 28 CLI (which
renders ``--format`` templates locally), on data shaped like DATA. Where berth differs on purpose
(how Python's None and types map to Go), the case says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from berth.errors import InvalidParameter
from berth.gotemplate import NO_VALUE, Template, TemplateError, render

DATA = {
    "Name": "web",
    "State": "running",
    "Image": "busybox:latest",
    "Config": {
        "Cmd": ["sh"],
        "Entrypoint": None,
        "Labels": {"a.b": "v", "com.docker.compose.project": "demo"},
        "Env": ["A=1", "B=2"],
    },
    "Names": ["/web", "/db"],
    "Ports": [],
    "Options": {},
    "Count": 2,
    "Ratio": 1.5,
    "Big": 1000000.0,
    "Nil": None,
    "Up": True,
    "Down": False,
    "Nested": {"z": {"y": "deep"}},
    "Mixed": [1, "x", None, True],
    "Html": "<a&b>",
}

ACTIONS = [
    ("{{.Name}}", "web"),
    ("{{.Config.Cmd}}", "[sh]"),
    ("{{json .Config.Cmd}}", '["sh"]'),
    ("{{.Config.Labels}}", "map[a.b:v com.docker.compose.project:demo]"),
    ('{{index .Config.Labels "a.b"}}', "v"),
    ('{{index .Config.Labels "com.docker.compose.project"}}', "demo"),
    ("{{.Missing}}", "<no value>"),
    ("{{ .Missing }}", "<no value>"),
    ("{{.Missing.Deeper}}", "<no value>"),
    ("{{.Nested.z.y}}", "deep"),
    ("{{range .Names}}{{.}},{{end}}", "/web,/db,"),
    ("{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}", "0=/web 1=/db "),
    ("{{range $n := .Names}}[{{$n}}]{{end}}", "[/web][/db]"),
    ("{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}};{{end}}", "a.b:v;com.docker.compose.project:demo;"),
    ("{{range .Ports}}x{{else}}none{{end}}", "none"),
    ("{{range .Options}}x{{else}}none{{end}}", "none"),
    ("{{range .Missing}}x{{else}}none{{end}}", "none"),
    ("{{range 3}}{{.}}{{end}}", "012"),
    ("{{range $i, $n := .Names}}{{if $i}}, {{end}}{{$n}}{{end}}", "/web, /db"),
    ("{{range $i, $n := .Names}}{{if eq $i 1}}{{break}}{{end}}{{$n}}{{end}}", "/web"),
    ("{{range $i, $n := .Names}}{{if eq $i 0}}{{continue}}{{end}}{{$n}}{{end}}", "/db"),
    ('{{if eq .State "running"}}up{{else}}down{{end}}', "up"),
    ('{{if eq .State "exited"}}up{{else}}down{{end}}', "down"),
    ('{{if eq .State "exited"}}a{{else if eq .State "running"}}b{{else}}c{{end}}', "b"),
    ("{{if .Ports}}ports{{else}}no ports{{end}}", "no ports"),
    ('{{if .Up}}y{{end}}{{if .Down}}n{{end}}{{if .Nil}}nil{{end}}{{if .Missing}}m{{end}}'
     '{{if "x"}}s{{end}}{{if ""}}e{{end}}{{if 0}}0{{end}}{{if 1.5}}f{{end}}', "ysf"),
    ("{{with .Nested.z}}{{.y}}{{end}}", "deep"),
    ("{{with .Missing}}{{.}}{{else}}fallback{{end}}", "fallback"),
    ("{{with .Missing}}a{{else with .Name}}{{.}}{{end}}", "web"),
    ("{{with $x := .Name}}{{$x}}{{end}}", "web"),
    ("{{$n := .Name}}{{$n}}-{{$.Name}}", "web-web"),
    ("{{range .Names}}{{$.State}} {{end}}", "running running "),
    ("{{$x := 1}}{{range .Names}}{{$x = .}}{{end}}{{$x}}", "/db"),
    ('{{$v := "outer"}}{{if true}}{{$v := "inner"}}{{$v}}{{end}}-{{$v}}', "inner-outer"),
    ('{{.Name | printf "%s!"}}', "web!"),
    ('{{printf "%s-%s" "a" "b" | printf "[%s]"}}', "[a-b]"),
    ('{{(index .Names 0)}}|{{(index .Nested "z").y}}|{{len (index .Names 1)}}', "/web|deep|3"),
    ('{{"raw" | len}}|{{`back\ntick`}}|{{"tab\\there"}}|{{\'a\'}}|{{print nil}}|{{true}}|{{1.5}}|{{0x1F}}'
     '|{{1e3}}|{{-3}}|{{"\\x41\\101\\u00e9"}}', "3|back\ntick|tab\there|97|<nil>|true|1.5|31|1000|-3|AAé"),
    ("{{/* a comment */}}x", "x"),
    ("{{.Count}} {{.Ratio}} {{.Big}} {{.Mixed}} {{.Up}} {{.Options}} {{.Ports}}", "2 1.5 1e+06 [1 x <nil> true] true map[] []"),
    # Go prints a nil interface{} map value as <no value>; berth prints None as a nil pointer: <nil>
    ("{{.Nil}}|{{.Config.Entrypoint}}", "<nil>|<nil>"),
]

TRIM = [
    ("a  {{- .Name -}}  b", "awebb"),
    ('a  {{- " x " -}}  b', "a x b"),
    ('{{- " x " -}}', " x "),
    ("{{.Name -}}\n\n  z", "webz"),
    ("a\n  {{- /* c */ -}}\n b", "ab"),
    ("a {{/* c */ -}} b", "a b"),
    ("a {{- /* c */}} b", "a b"),
    ("{{range .Names -}}\n  {{.}}\n{{end -}}", "/web\n/db\n"),
    ("{{if .Up -}}\n  yes\n{{- else -}}\n  no\n{{- end}}", "yes"),
    ("{{-3}}|{{- -3}}|{{-3 -}}", "-3|-3|-3"),
    ("{{-\t.Name -}}\n x", "webx"),
]

FUNCS = [
    ('{{split "a,b,c" ","}}', "[a b c]"),
    ('{{split "abc" ""}}', "[a b c]"),
    ('{{split "" ","}}', "[]"),
    ('{{join (split "a b c" " ") "-"}}', "a-b-c"),
    ('{{join .Names ","}}', "/web,/db"),  # Go wants a []string; a Python list of str is one
    ('{{join .Config.Entrypoint ","}}', ""),  # None is a nil slice
    ('{{lower "ABC"}}|{{upper "abc"}}|{{upper "straße"}}', "abc|ABC|STRAßE"),
    ('{{title "hello world"}}|{{title "ab-cd e_f"}}|{{title "o\'neil x.y 1a"}}|{{title "hELLO"}}',
     "Hello World|Ab-Cd E_f|O'Neil X.Y 1a|HELLO"),
    ('{{truncate "abcdef" 3}}|{{truncate "abc" 10}}|{{truncate "abc" 3}}|{{truncate "héllo" 3}}', "abc|abc|abc|hé"),
    ('{{pad "x" 2 3}}|{{pad "" 2 2}}|{{pad "ab" 0 1}}|', "  x   ||ab |"),
    ("{{json .Config.Cmd}}|{{json .Name}}|{{json .Html}}|{{json .Nil}}|{{json .Missing}}|{{json .Ports}}"
     "|{{json .Options}}|{{json .Mixed}}", '["sh"]|"web"|"<a&b>"|null|null|[]|{}|[1,"x",null,true]'),
    ("{{json 1.5}}|{{json 1e21}}|{{json 1e20}}|{{json 1e-7}}|{{json 0.000001}}|{{json -0.0}}"
     "|{{json 123456789.0}}|{{json true}}|{{json 3}}", "1.5|1e+21|100000000000000000000|1e-7|0.000001|-0|123456789|true|3"),
    ('{{json "\\b\\f\\n\\r\\t\\u2028\\u2029\\u007f\\u0001é\\"\\\\/"}}',
     '"\\b\\f\\n\\r\\t\\u2028\\u2029\x7f\\u0001é\\"\\\\/"'),
    ("{{json .Config}}", '{"Cmd":["sh"],"Entrypoint":null,"Labels":{"a.b":"v",'
     '"com.docker.compose.project":"demo"},"Env":["A=1","B=2"]}'),  # keys in the dict's order
    ('{{len .Names}}|{{len .Name}}|{{len .Config.Labels}}|{{len "héllo"}}|{{len .Ports}}', "2|3|2|6|0"),
    ('{{index .Names 1}}|{{index .Nested "z" "y"}}|{{index "abc" 1}}|{{index .Config.Labels "nope"}}', "/db|deep|98|<no value>"),
    ('{{slice .Names 1}}|{{slice .Names 0 1}}|{{slice .Names}}|{{slice "abcdef" 1 3}}|{{slice "abcdef" 2}}'
     "|{{slice .Names 0 1 2}}", "[/db]|[/web]|[/web /db]|bc|cdef|[/web]"),
    ('{{and 1 0 2}}|{{and 1 2}}|{{or 0 "" 3}}|{{or 0 ""}}|{{not 0}}|{{not .Name}}|{{and .Missing 1}}'
     "|{{or .Missing .Name}}", "0|2|3||true|false|<no value>|web"),
    ('{{eq 1 1}}|{{eq 1 2}}|{{eq 1 2 1}}|{{eq "a" "b" "c"}}|{{eq .Name "web"}}|{{eq .Missing "x"}}'
     '|{{eq nil nil}}|{{ne 1 2}}|{{ne "a" "a"}}', "true|false|true|false|true|false|true|true|false"),
    ('{{lt 1 2}}|{{le 2 2}}|{{gt "b" "a"}}|{{ge 1 2}}|{{lt 1.5 2.5}}|{{gt 2.0 1.5}}|{{le "b" "a"}}',
     "true|true|true|false|true|true|false"),
    ('{{print "a" "b"}}|{{print 1 2}}|{{print "a" 1 2 "b" nil 3}}|{{print 1.5 true}}|{{print .Names .Names}}'
     "|{{print}}", "ab|1 2|a1 2b<nil> 3|1.5 true|[/web /db] [/web /db]|"),
    ('{{println "a" 1}}|{{println}}|', "a 1\n|\n|"),
    ('{{html "<a href=\\"x\\">&\'</a>"}}|{{html 1 "x"}}|{{js "a\'b\\"<>&=\\n\\\\é"}}|{{urlquery "a b&c=d/é~"}}',
     "&lt;a href=&#34;x&#34;&gt;&amp;&#39;&lt;/a&gt;|1x|a\\'b\\\"\\u003C\\u003E\\u0026\\u003D\\u000A\\\\é"
     "|a+b%26c%3Dd%2F%C3%A9~"),
    ('{{"x" | printf "%s%s" "a"}}|{{.Names | len}}|{{.Name | upper | printf "%q"}}', 'ax|2|"WEB"'),
    ("{{printf \"%v|%s\" .Missing .Missing}}|{{print .Missing}}", "<nil>|%!s(<nil>)|<nil>"),
]

PRINTF = [
    ('{{printf "%-10s|" .Name}}', "web       |"),
    ('{{printf "%-10s|%10s|%.2s|%5.1s|" "abc" "abc" "abc" "abc"}}', "abc       |       abc|ab|    a|"),
    ('{{printf "%5.2f|%-8.3f|%08.3f|%+d|% d|%05d|%-5d|%x|%X|%#x|%o|%#o|%b|%c|%U|%q|%e|%E|%g|%G|%.3g|%t|%%" '
     '3.14159 2.5 -3.5 5 5 -42 7 255 255 255 8 8 5 65 65 "a\\"b\\n" 1234.5678 0.000012 1234567.0 1e-7 1234.5678 true}}',
     ' 3.14|2.500   |-003.500|+5| 5|-0042|7    |ff|FF|0xff|10|010|101|A|U+0041|"a\\"b\\n"|1.234568e+03'
     "|1.200000E-05|1.234567e+06|1E-07|1.23e+03|true|%"),
    ('{{printf "%d"}}|{{printf "%d %d" 1}}|{{printf "%d" 1 2}}|{{printf "%d" 1 "x" 2.5}}|{{printf "%z" 1}}'
     '|{{printf "%!" 1}}|{{printf "%"}}|{{printf "%-" 1}}',
     "%!d(MISSING)|1 %!d(MISSING)|1%!(EXTRA int=2)|1%!(EXTRA string=x, float64=2.5)|%!z(int=1)|%!!(int=1)"
     "|%!(NOVERB)|%!(NOVERB)%!(EXTRA int=1)"),
    ('{{printf "%s" 2}}|{{printf "%d" "s"}}|{{printf "%t" 1}}|{{printf "%f" 1}}|{{printf "%s" nil}}|{{printf "%d" nil}}'
     '|{{printf "%v" nil}}|{{printf "%x" "hi"}}|{{printf "% x" "hi"}}|{{printf "%X" "hi"}}|{{printf "%q" 65}}'
     '|{{printf "%s" true}}', "%!s(int=2)|%!d(string=s)|%!t(int=1)|%!f(int=1)|%!s(<nil>)|%!d(<nil>)|<nil>|6869"
     "|68 69|6869|'A'|%!s(bool=true)"),
    ('{{printf "%v" .Config.Labels}}|{{printf "%#v" .Config.Labels}}|{{printf "%#v" .Name}}|{{printf "%q" .Names}}'
     '|{{printf "%5v|" .Names}}|{{printf "%T %T %T %T %T %T %T" 1 1.5 "s" true nil .Names .Options}}',
     'map[a.b:v com.docker.compose.project:demo]|map[string]interface {}{"a.b":"v", "com.docker.compose.project":"demo"}'
     '|"web"|["/web" "/db"]|[ /web   /db]||int float64 string bool <nil> []interface {} map[string]interface {}'),
    ('{{printf "%#v" .Mixed}}', '[]interface {}{1, "x", interface {}(nil), true}'),
    ('{{printf "%5d" .Mixed}}', "[    1 %!d(string=    x) <nil> %!d(bool= true)]"),
    ('{{printf "%x" .Names}}|{{printf "%6.2v|" .Names}}|{{printf "%q" .Config.Labels}}|{{printf "%5s|" .Nested}}',
     '[2f776562 2f6462]|[    /w     /d]||map["a.b":"v" "com.docker.compose.project":"demo"]'
     "|map[    z:map[    y: deep]]|"),
    ('{{printf "%*d|%-*d|%.*f" 5 1 4 2 2 3.14159}}', "    1|2   |3.14"),
    ('{{printf "%v %v %v %v %v %v" 1e21 1e20 123456789.0 0.000001 1.0 100.0}}|{{printf "%.2v|%10.3v|" 3.14159 "abcdef"}}',
     "1e+21 1e+20 1.23456789e+08 1e-06 1 100|3.1|       abc|"),
    ('{{printf "%6.2f%%" 12.345}}|{{printf "%x %X %o %b" -255 -255 -8 -5}}|{{printf "%#q" "ab"}}|{{printf "%+q" "é"}}'
     '|{{printf "%q" "é\\t\\x01"}}|{{printf "%x" 1.5}}|{{printf "%s" 1.5}}|{{printf "%08s" "ab"}}|{{printf "%-08d|" 5}}'
     '|{{printf "%+.2e" 12345.678}}|{{printf "%c%c" 0x4E16 128512}}|{{printf "%d" 3000000000}}|{{printf "%v" 1e100}}',
     ' 12.35%|-ff -FF -10 -101|`ab`|"\\u00e9"|"é\\t\\x01"|0x1.8p+00|%!s(float64=1.5)|000000ab|5       |'
     "|+1.23e+04|世😀|3000000000|1e+100"),
    ('{{printf "%#08x|%08x|%+08d|%.3d|%08.3d|%-8.3d|%#o|%O|%#b|%#X|% 05d|%x" 255 255 5 5 5 5 8 8 5 255 -5 -255}}',
     "0x000000ff|000000ff|+0000005|005|     005|005     |010|0o10|0b101|0XFF|-0005|-ff"),
    ('{{printf "%5v|%-5v|%05v|%5t|%5q|%-7T|" nil 1 2 true "a" 1}}', '<nil>|1    |00002| true|  "a"|int    |'),
    ('{{printf "%8.3e|%-12.4E|%+g|%.0f|%.1f|%.1f|%.1f" 1234.5 0.000123 1.5 2.5 0.25 0.35 1e15}}',
     "1.234e+03|1.2300E-04  |+1.5|2|0.2|0.3|1000000000000000.0"),
    ('{{printf "%5d|" "x"}}|{{printf "%.2f" "x"}}|{{printf "%d" 1.0}}', "%!d(string=    x)||%!f(string=x)|%!d(float64=1)"),
    ("{{1.0}} {{0.0}} {{-0.0}} {{1e-5}} {{123456.7}} {{1234567.0}} {{0.1}} {{3.0e-300}}",
     "1 0 -0 1e-05 123456.7 1.234567e+06 0.1 3e-300"),
    ('{{printf "%[2]d %[1]d" 1 2}}|{{printf "%[3]d" 1 2}}|{{printf "%d %[1]d %d" 1 2}}|{{printf "%[x]d" 1}}',
     "2 1|%!d(BADINDEX)|1 1 2|%!d(BADINDEX)"),
    ('{{printf "%-5s|%5.1q|%x|% X|%#x|%.1x" "é" "abc" "é" "ab" "ab" "abc"}}', 'é    |  "a"|c3a9|61 62|0x6162|61'),
    ('{{printf "%c|%q|%U|%#U|%+q" 233 233 233 233 233}}', "é|'é'|U+00E9|U+00E9 'é'|'\\u00e9'"),
    ('{{printf "%.0d|%5.0d|" 0 0}}', "|     |"),
    ('{{printf "%e %f %g" 0.0 0.0 0.0}}|{{printf "%v" 5e-324}}|{{printf "%g" 1e-320}}', "0.000000e+00 0.000000 0|5e-324|1e-320"),
    ('{{printf "%.*f" -1 3.14159}}|{{printf "%.f" 2.5}}|{{printf "%5.f|" 2.5}}', "%!(BADPREC)3.141590|2|    2|"),
    ('{{printf "%*d|%*d|%.*d" -5 1 "x" 2 "y" 3}}', "1    |%!(BADWIDTH)2|%!(BADPREC)3"),
    ('{{printf "%#.f|%#10g|%#6G|%#8.e|%#.3g|%#X|%#x" 2.5 0.0 1e6 123456.789 1.0 -2.25 -2.25}}',
     "2.|   0.00000|1.00000E+06|  1.e+05|1.00|-0X1.2P+01|-0x1.2000p+01"),
    ('{{printf "%.2T|%.T|%.4T|%.3x|% .x|%.0x|%b|%b|%+4.d|%.5U|%08U|%#U|%6.4x" '
     '65 1.5 nil -2.25 1e21 1e-7 1e21 0.0 0 1 128512 -1 "héllo"}}',
     "in||<nil>|-0x1.200p+01| 0x1p+70|0x1p-23|7629394531250000p+17|0p-1074|    |U+00001| U+1F600"
     "|U+FFFFFFFFFFFFFFFF|68c3a96c"),
    ('{{printf "%+v|%#v|%v" .Nested .Nested .Nested}}',
     'map[z:map[y:deep]]|map[string]interface {}{"z":map[string]interface {}{"y":"deep"}}|map[z:map[y:deep]]'),
]

PARSE_ERRORS = [
    ("{{.Name}", "template: :1: bad character U+007D '}'"),
    ("{{.Name } }}", 'template: :1: unexpected "}" in operand'),
    ("{{(}}", "template: :1: unclosed left paren"),
    ("{{.Name)}}", "template: :1: unexpected right paren"),
    ("{{| .Name}}", 'template: :1: unexpected "|" in command'),
    ("{{if}}{{end}}", "template: :1: missing value for if"),
    ("{{end}}", "template: :1: unexpected {{end}}"),
    ("{{else}}", "template: :1: unexpected {{else}}"),
    ("{{if .Name}}", "template: :1: unexpected EOF"),
    ("{{range}}", "template: :1: missing value for range"),
    ("{{$x}}", 'template: :1: undefined variable "$x"'),
    ("{{foo}}", 'template: :1: function "foo" not defined'),
    ('{{"a" | "b"}}', "template: :1: non executable command in pipeline stage 2"),
    ("{{break}}", "template: :1: {{break}} outside {{range}}"),
    ("{{range .Names}}{{end}}{{continue}}", "template: :1: {{continue}} outside {{range}}"),
    ("{{with .Name}}{{break}}{{end}}", "template: :1: {{break}} outside {{range}}"),
    ("{{/* unclosed", "template: :1: unclosed comment"),
    ("{{/*x*/ }}", "template: :1: comment ends before closing delimiter"),
    ('{{"abc}}', "template: :1: unterminated quoted string"),
    ("{{`abc}}", "template: :1: unterminated raw quoted string"),
    ("{{'ab'}}", "template: :1: malformed character constant: 'ab'"),
    ("{{1x}}", 'template: :1: bad number syntax: "1x"'),
    ("{{0x}}", 'template: :1: illegal number syntax: "0x"'),
    ('{{-"x"}}', 'template: :1: illegal number syntax: "-"'),
    ("{{.Name.}}", "template: :1: unexpected <.> in operand"),
    ('{{"a".b}}', 'template: :1: unexpected . after term "\\"a\\""'),
    ('{{.a"b"}}', "template: :1: bad character U+0022 '\"'"),
    ('{{"a""b"}}', 'template: :1: unexpected "\\"b\\"" in operand'),
    ("{{.Name := 1}}", 'template: :1: unexpected ":=" in operand'),
    ("{{if 1}}{{else}}{{else}}{{end}}", "template: :1: expected end; found {{else}}"),
    ("{{if 1}}{{end}}{{end}}", "template: :1: unexpected {{end}}"),
    ("{{range $a, $b, $c := .Names}}{{end}}", "template: :1: too many declarations in range"),
    ("{{$x, $y := 1}}", "template: :1: too many declarations in command"),
    ("{{if 1}}{{else with 2}}{{end}}", "template: :1: unexpected <with> in input"),
    ("{{range .Names}}{{else if 1}}{{end}}", "template: :1: unexpected <if> in input"),
    ("{{range .Names}}{{$y := 1}}{{end}}{{$y}}", 'template: :1: undefined variable "$y"'),
    ("{{}}", "template: :1: missing value for command"),
    ("{{ }}", "template: :1: missing value for command"),
    ("{{.Name,}}", 'template: :1: unexpected "," in operand'),
    ("{{$x : = 1}}", 'template: :1: undefined variable "$x"'),
    ('{{"\\q"}}', "template: :1: invalid syntax"),
    ("{{08}}", 'template: :1: integer overflow: "08"'),
    ("line1\n{{.Name}}\n  {{if}}", "template: :3: missing value for if"),
    ('{{define "x"}}{{end}}', "template: :1: the {{define}} action is not supported"),  # berth's own
]

EXEC_ERRORS = [
    ("{{index .Names 5}}", 'template: :1:2: executing "" at <index .Names 5>: error calling index: index out of range: 5'),
    ("{{index .Names -1}}",
     'template: :1:2: executing "" at <index .Names -1>: error calling index: index out of range: -1'),
    ('{{index .Names "a"}}', 'template: :1:2: executing "" at <index .Names "a">: error calling index: '
     "cannot index slice/array with type string"),
    ("{{index .Config.Labels 1}}", 'template: :1:2: executing "" at <index .Config.Labels 1>: error calling index: '
     "value has type int; should be string"),
    ("{{index 1 1}}", "template: :1:2: executing \"\" at <index 1 1>: error calling index: can't index item of type int"),
    ("{{slice .Names 2 1}}",
     'template: :1:2: executing "" at <slice .Names 2 1>: error calling slice: invalid slice index: 2 > 1'),
    ("{{slice .Names 0 5}}", 'template: :1:2: executing "" at <slice .Names 0 5>: error calling slice: index out of range: 5'),
    ('{{slice "abc" 1 2 3}}',
     'template: :1:2: executing "" at <slice "abc" 1 2 3>: error calling slice: cannot 3-index slice a string'),
    ("{{len 3}}", 'template: :1:2: executing "" at <len 3>: error calling len: len of type int'),
    ("{{eq 1}}", 'template: :1:2: executing "" at <eq 1>: error calling eq: missing argument for comparison'),
    ("{{eq}}", 'template: :1:2: executing "" at <eq>: wrong number of args for eq: want at least 1 got 0'),
    ("{{eq .Names .Names}}", 'template: :1:2: executing "" at <eq .Names .Names>: error calling eq: '
     "non-comparable type [/web /db]: []interface {}"),
    ('{{eq 1 "a"}}', 'template: :1:2: executing "" at <eq 1 "a">: error calling eq: incompatible types for comparison'),
    ("{{eq 1 1.0}}", 'template: :1:2: executing "" at <eq 1 1.0>: error calling eq: incompatible types for comparison'),
    ('{{lt 1 "b"}}', 'template: :1:2: executing "" at <lt 1 "b">: error calling lt: incompatible types for comparison'),
    ("{{lt true false}}", 'template: :1:2: executing "" at <lt true false>: error calling lt: invalid type for comparison'),
    ("{{lt nil 1}}", 'template: :1:2: executing "" at <lt nil 1>: error calling lt: invalid type for comparison'),
    ("{{not}}", 'template: :1:2: executing "" at <not>: wrong number of args for not: want 1 got 0'),
    ("{{not 1 2}}", 'template: :1:2: executing "" at <not>: wrong number of args for not: want 1 got 2'),
    ("{{and}}", 'template: :1:2: executing "" at <and>: wrong number of args for and: want at least 1 got 0'),
    ("{{join .Config.Cmd}}", 'template: :1:2: executing "" at <join>: wrong number of args for join: want 2 got 1'),
    ("{{upper 1}}", 'template: :1:8: executing "" at <1>: expected string; found 1'),
    ("{{upper .Missing}}", 'template: :1:8: executing "" at <.Missing>: invalid value; expected string'),
    ("{{upper .Count}}", 'template: :1:8: executing "" at <.Count>: wrong type for value; expected string; got int'),
    ('{{pad "x" "a" 1}}', 'template: :1:10: executing "" at <"a">: expected integer; found "a"'),
    ('{{pad "x" -1 0}}',
     'template: :1:2: executing "" at <pad "x" -1 0>: error calling pad: strings: negative Repeat count'),
    ('{{truncate "abc" -1}}', 'template: :1:2: executing "" at <truncate "abc" -1>: error calling truncate: '
     "runtime error: slice bounds out of range [:-1]"),
    ("{{.Name 1}}", 'template: :1:2: executing "" at <.Name>: Name is not a method but has arguments'),
    # Go names the static type of a map value (interface {}); berth names the value's type
    ("{{.Name.X}}", "template: :1:7: executing \"\" at <.Name.X>: can't evaluate field X in type string"),
    ("{{.Nil.X}}", 'template: :1:6: executing "" at <.Nil.X>: nil pointer evaluating interface {}.X'),
    ("{{nil}}", 'template: :1:2: executing "" at <nil>: nil is not a command'),
    ("{{1 2}}", "template: :1:2: executing \"\" at <1>: can't give argument to non-function 1"),
    ("{{nil 1}}", "template: :1:2: executing \"\" at <nil>: can't give argument to non-function nil"),
    ('{{(print "x").Y}}', "template: :1:9: executing \"\" at <\"x\">: can't evaluate field Y in type string"),
    ("{{range .Name}}{{end}}", "template: :1:8: executing \"\" at <.Name>: range can't iterate over web"),
    ("{{range $i, $v := 3}}{{end}}",
     "template: :1:18: executing \"\" at <3>: can't use 3 to iterate over more than one variable"),
    ("{{range $i, $e = .Names}}{{end}}", 'template: :1:17: executing "" at <.Names>: undefined variable: $i'),
    ("{{call .Name}}",
     'template: :1:2: executing "" at <call .Name>: error calling call: non-function .Name of type string'),
    ("line1\n{{.Name}}\n  {{index .Names 9}}",
     'template: :3:4: executing "" at <index .Names 9>: error calling index: index out of range: 9'),
    ("é {{index .Names 9}}", 'template: :1:5: executing "" at <index .Names 9>: error calling index: index out of range: 9'),
]


@pytest.mark.parametrize(("text", "want"), ACTIONS + TRIM + FUNCS + PRINTF)
def test_render(text: str, want: str) -> None:
    assert render(text, DATA) == want


@pytest.mark.parametrize(("text", "message"), PARSE_ERRORS)
def test_parse_error(text: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        Template(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "message"), EXEC_ERRORS)
def test_exec_error(text: str, message: str) -> None:
    template = Template(text)
    with pytest.raises(TemplateError) as caught:
        template.execute(DATA)
    assert str(caught.value) == message


def test_template_error_is_an_invalid_parameter() -> None:
    with pytest.raises(InvalidParameter):
        Template("{{")


def test_name_appears_in_messages() -> None:
    with pytest.raises(TemplateError, match=r'^template: ps:1:2: executing "ps" at <index . 3>: '):
        Template("{{index . 3}}", name="ps").execute([1])


def test_execute_is_repeatable() -> None:
    template = Template("{{range .}}{{.}}{{end}}")
    assert [template.execute(d) for d in ([1, 2], [], ["a"])] == ["12", "", "a"]


@dataclass(frozen=True)
class Port:
    PrivatePort: int
    Type: str


class Container:
    def __init__(self) -> None:
        self.Names = ["/web"]
        self.Ports = [Port(80, "tcp")]
        self._secret = "hidden"

    def ID(self) -> str:
        return "0123456789ab"

    def Label(self, key: str) -> str:
        return {"com.example": "yes"}.get(key, "")

    @property
    def State(self) -> str:
        return "running"


OBJECTS = [
    ("{{.ID}}", "0123456789ab"),
    ('{{.Label "com.example"}}|{{.Label "nope"}}', "yes|"),
    ('{{"com.example" | .Label}}', "yes"),
    ("{{.State}} {{.Names}}", "running [/web]"),
    ("{{range .Ports}}{{.PrivatePort}}/{{.Type}}{{end}}", "80/tcp"),
    ("{{.Ports}}", "[{80 tcp}]"),
    ('{{printf "%+v" (index .Ports 0)}}', "{PrivatePort:80 Type:tcp}"),
    ("{{json .Ports}}", '[{"PrivatePort":80,"Type":"tcp"}]'),
    ("{{with index .Ports 0}}{{if eq .Type \"tcp\"}}t{{end}}{{end}}", "t"),
]


@pytest.mark.parametrize(("text", "want"), OBJECTS)
def test_objects(text: str, want: str) -> None:
    assert render(text, Container()) == want


@pytest.mark.parametrize(("text", "message"), [
    ("{{._secret}}", "can't evaluate field _secret in type Container"),
    ("{{.Nope}}", "can't evaluate field Nope in type Container"),
    ("{{.Label}}", "error calling Label: "),
    ("{{.State 1}}", "State is not a method but has arguments"),
])
def test_object_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match="^template: :1:2: executing .*: " + message):
        render(text, Container())


def test_user_functions() -> None:
    funcs = {"shout": lambda s: s.upper() + "!", "len": lambda v: "mine", "seen": lambda v: repr(v)}
    assert render("{{shout .Name}}|{{len .Names}}|{{seen .Missing}}", DATA, funcs) == "WEB!|mine|None"


def test_user_function_error() -> None:
    def boom(value: object) -> str:
        raise ValueError("bad value")

    with pytest.raises(TemplateError) as caught:
        render("{{boom .Name}}", DATA, {"boom": boom})
    assert str(caught.value) == 'template: :1:2: executing "" at <boom .Name>: error calling boom: bad value'


def test_no_value_sentinel() -> None:
    assert repr(NO_VALUE) == "<no value>"
    assert Template("{{.}}").execute(NO_VALUE) == "<no value>"


def test_nesting_is_bounded() -> None:
    assert render("{{" + "(" * 99 + "1" + ")" * 99 + "}}", {}) == "1"
    with pytest.raises(TemplateError, match="^template: :1: max expression depth exceeded$"):
        Template("{{" + "(" * 100 + "1" + ")" * 100 + "}}")


def test_self_referencing_data() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(TemplateError, match="^template: : data nested too deeply to print$"):
        render("{{.}}", loop)
