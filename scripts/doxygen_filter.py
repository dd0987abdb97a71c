#!/usr/bin/env python3
"""Doxygen input filter for scoresde's headers (used by docs/Doxyfile through scripts/docs.sh).

The headers are written in the Google/Ceres style: plain `//` comments above declarations, a
trailing `// ...` after a member, and an opening comment that says what the file computes. Doxygen
reads only `///`, so this filter rewrites (adding one line at the top):

    opening comment block (before the first code line)  ->  /// @file ... (the file's description)
    `// text` on its own line                          ->  /// text (documents what follows)
    `code;  // text`                                   ->  code;  ///< text (documents the member)

Comment text is escaped for Doxygen outside `code spans`: backslash, @, <, >, &, #, %, $ would
otherwise be read as commands, HTML tags or links. Comments inside function bodies and after
lines that declare nothing (braces, access specifiers, preprocessor lines) stay plain `//`.

    python3 scripts/doxygen_filter.py HEADER    (prints the filtered header)
"""
import re
import sys

ESCAPE = re.compile(r"([\\@<>&#%$])")


def escape(text):
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans
        parts[i] = ESCAPE.sub(r"\\\1", parts[i])
    if len(parts) % 2 == 0:  # an unmatched backtick: keep it literal
        return "`".join(parts[:-1]) + "\\`" + parts[-1]
    return "`".join(parts)


def code_part(line):
    """The code before a trailing // comment (outside string and char literals), or None."""
    in_string = None
    i = 0
    while i < len(line):
        c = line[i]
        if in_string:
            if c == "\\":
                i += 2
                continue
            if c == in_string:
                in_string = None
        elif c in "\"'":
            in_string = c
        elif line.startswith("//", i):
            return line[:i], line[i + 2:]
        i += 1
    return None


def declares_member(code):
    stripped = code.strip()
    if not stripped or stripped.startswith("#"):
        return False
    if stripped in ("{", "}", "};", "public:", "private:", "protected:"):
        return False
    return stripped.endswith((";", ",", "{")) or stripped.endswith(")")


def main(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = []
    at_start = True
    depth = 0          # brace depth
    body_depth = None  # depth at which a function body opened
    for line in lines:
        stripped = line.strip()
        comment = re.match(r"^(\s*)//(?!/)\s?(.*)$", line)
        if at_start:
            if comment:
                # The file's description; "@file" opens it (one extra line, at the top).
                prefix = "/// @file\n" if not out else ""
                out.append(prefix + "/// " + escape(comment.group(2)))
                continue
            if stripped:
                at_start = False
        in_body = body_depth is not None
        if comment and not in_body:
            out.append(comment.group(1) + "/// " + escape(comment.group(2)))
        elif not in_body and (split := code_part(line)) is not None and declares_member(split[0]):
            text = split[1][1:] if split[1].startswith(" ") else split[1]
            out.append(split[0] + "///< " + escape(text))
        else:
            out.append(line)
        # Track function bodies (a "{" that follows ")" or "const" / "override" etc.) so that
        # comments inside them stay plain.
        code = code_part(line)[0] if code_part(line) else line
        code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
        for ch in code:
            if ch == "{":
                before = code[:code.index("{")].strip()
                if body_depth is None and re.search(r"\)\s*(const)?\s*(noexcept)?\s*"
                                                    r"(override|final)?\s*(->\s*[\w:<>]+)?$",
                                                    before) and not before.startswith(
                                                        ("namespace", "class", "struct", "enum")):
                    body_depth = depth
                depth += 1
            elif ch == "}":
                depth -= 1
                if body_depth is not None and depth == body_depth:
                    body_depth = None
    sys.stdout.write("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
