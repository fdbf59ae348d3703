#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for sluice's headers: reads a header, writes it to
stdout with its `//` comments made into Doxygen comments, line for line (no
line is added or removed, so Doxygen's warnings point at the real lines).

sluice writes its comments with plain `//`. This filter turns, at namespace,
class and enum scope only (never inside a function body or an initializer):

  * the header's first comment block (after `#pragma once`) into the file's
    documentation (`\\file`), unless it is a licence header;
  * a block of `//` lines directly above a declaration (no blank line
    between) into `///`;
  * a trailing `// text` after a member or an enumerator into `///< text`,
    and the `//` lines aligned under it into its continuation;

and leaves every other comment alone: section rulers (`// ---- x ----`), a
comment followed by a blank line, `// NOLINT`, commented-out code, and `//`
inside a string or character literal.

In a converted block, a run of lines indented beyond the text (an example, a
diagram, a table) becomes a `\\code` block (highlighted if it looks like C++), and
the characters Doxygen would read as commands or HTML (\\ @ < > & # % $) are
escaped outside `code spans` and "quoted text", which Doxygen takes literally.

Usage: doc_filter.py FILE   (Doxygen calls it as INPUT_FILTER = "python3 doc_filter.py")
"""

import re
import sys

COMMENT_ONLY = re.compile(r'^(\s*)//(?![/!])(.*)$')
RULER = re.compile(r'^\s*-{2,}.*-{2,}\s*$|^\s*[-=*]{4,}\s*$')
LICENSE = re.compile(r'copyright|spdx-license|licensed under|license, version', re.I)
TOOL_DIRECTIVE = re.compile(r'^\s*(NOLINT|clang-format|IWYU|cppcheck|lint)', re.I)
ACCESS = re.compile(r'^\s*(public|private|protected)\s*:')
LIST_ITEM = re.compile(r'^(\s*)([-*+]|\d+[.)])\s+')
SCOPE_HEAD = re.compile(r'^\s*(?:export\s+)?(?:inline\s+)?'
                        r'(namespace|class|struct|union|enum(?:\s+(?:class|struct))?|extern\s*"C(?:\+\+)?")\b')
CODE_LIKE = re.compile(r'[;{}]\s*(//.*)?$|^\s*(case\b|default:|#)')


def strip_template_prefix(s):
    """Removes a leading `template <...>` (balanced angle brackets)."""
    m = re.match(r'\s*template\s*<', s)
    if not m:
        return s
    depth, i = 1, m.end()
    while i < len(s) and depth:
        if s[i] == '<':
            depth += 1
        elif s[i] == '>':
            depth -= 1
        i += 1
    return strip_template_prefix(s[i:])


def strip_attributes(s):
    """Removes [[...]], alignas(...) and __attribute__((...))."""
    s = re.sub(r'\[\[.*?\]\]', ' ', s)
    for kw in ('alignas', '__attribute__', '__declspec'):
        while True:
            m = re.search(r'\b' + kw + r'\s*\(', s)
            if not m:
                break
            depth, i = 1, m.end()
            while i < len(s) and depth:
                depth += {'(': 1, ')': -1}.get(s[i], 0)
                i += 1
            s = s[:m.start()] + ' ' + s[i:]
    return s


def is_scope_head(stmt):
    """Whether the text before a `{` opens a namespace, class, struct, union,
    enum or extern "C" block (whose members are documented), as opposed to a
    function body, a lambda, a requires-expression or an initializer."""
    s = re.sub(r'^(\s*(public|private|protected)\s*:(?!:))+', '', stmt)
    s = strip_attributes(strip_template_prefix(s))
    m = SCOPE_HEAD.match(s)
    if not m:
        return False
    rest = s[m.end():]
    if m.group(1) == 'namespace' or m.group(1).startswith('extern'):
        return True
    # `struct foo f() {` or `class x y = {`: a function or a variable.
    return '(' not in rest and '=' not in rest


class Line:
    __slots__ = ('text', 'code', 'comment_col', 'doc_scope', 'pre')

    def __init__(self, text):
        self.text = text
        self.code = text          # the part before a line comment, literals kept
        self.comment_col = -1     # column of a line comment's `//`, or -1
        self.doc_scope = True     # at namespace/class/enum scope when the line starts
        self.pre = False          # a preprocessor line (or its continuation)


def scan(lines):
    """One pass over the file as C++ tokens: finds each line's `//` comment
    (not inside a literal or a block comment) and whether the line starts at
    a scope whose declarations are documented."""
    out = [Line(t) for t in lines]
    stack = []                # True: a documented scope; False: anything else
    stmt = []                 # code since the last ; { } at any depth
    in_block = False
    pre_cont = False
    for ln in out:
        t = ln.text
        ln.doc_scope = all(stack)
        if pre_cont or (not in_block and t.lstrip().startswith('#')):
            ln.pre = True
            pre_cont = t.rstrip().endswith('\\')
            # A preprocessor line's comment still counts (trailing docs on
            # #define are not made, but `//` must not be taken as code).
            continue
        i, n = 0, len(t)
        quote = None
        while i < n:
            c = t[i]
            if in_block:
                if t.startswith('*/', i):
                    in_block = False
                    i += 2
                    continue
                i += 1
                continue
            if quote:
                if c == '\\':
                    i += 2
                    continue
                if c == quote:
                    quote = None
                i += 1
                continue
            if t.startswith('//', i):
                ln.code = t[:i]
                ln.comment_col = i
                break
            if t.startswith('/*', i):
                in_block = True
                i += 2
                continue
            if c == '"' or (c == "'" and not (i > 0 and t[i - 1].isalnum())):
                # (a ' after a digit is a digit separator: 1'000)
                quote = c
            elif c == '{':
                stack.append(all(stack) and is_scope_head(''.join(stmt)))
                stmt = []
                i += 1
                continue
            elif c == '}':
                if stack:
                    stack.pop()
                stmt = []
                i += 1
                continue
            elif c == ';':
                stmt = []
                i += 1
                continue
            stmt.append(c)
            i += 1
        stmt.append(' ')
    return out


def escape(text):
    """Escapes Doxygen's command and HTML characters outside `code spans` and
    "quoted text" (Doxygen takes both literally: an escape there would show)."""
    parts = re.split(r'(`[^`]*`|"[^"]*")', text)
    for k in range(0, len(parts), 2):
        parts[k] = re.sub(r'([\\@<>&#%$])', r'\\\1', parts[k])
    return ''.join(parts)


def comment_text(line):
    """The text after `//`, less the one space that follows it."""
    m = COMMENT_ONLY.match(line)
    body = m.group(2)
    return body[1:] if body.startswith(' ') else body


def indent_of(s):
    return len(s) - len(s.lstrip(' '))


def convert_block(indent, texts):
    """Doc-comment lines for one block's texts (already without `//`)."""
    out = []
    n = len(texts)
    in_list_at = -1           # text column of the current list item, or -1
    i = 0
    while i < n:
        s = texts[i]
        if not s.strip():
            out.append(indent + '///')
            i += 1
            continue
        ind = indent_of(s)
        m = LIST_ITEM.match(s)
        if m:
            in_list_at = m.end()
        continuing_list = in_list_at >= 0 and ind == in_list_at
        if ind >= 2 and not m and not continuing_list:
            # A preformatted run: lines indented by 2 or more, and empty
            # lines between two of them.
            j = i
            while j < n:
                if texts[j].strip() and indent_of(texts[j]) >= 2:
                    j += 1
                elif not texts[j].strip() and j + 1 < n and texts[j + 1].strip() and indent_of(texts[j + 1]) >= 2:
                    j += 1
                else:
                    break
            run = texts[i:j]
            base = min(indent_of(r) for r in run if r.strip())
            code = any(CODE_LIKE.search(r) for r in run)
            # \verbatim is not used: Doxygen 1.9 keeps the /// of each line
            # inside it. \code strips them, and {.unparsed} shows the text as
            # it is, without highlighting.
            opener = r'\code{.cpp}' if code else r'\code{.unparsed}'
            for k, r in enumerate(run):
                body = r[base:] if r.strip() else ''
                if k == 0 and out:
                    # The opener ends the line before (an empty one, or the
                    # text that introduces the example), so that every line
                    # of the block keeps its indentation.
                    out[-1] += ' ' + opener
                    line = indent + '/// ' + body
                elif k == 0:
                    line = indent + '/// ' + opener + body
                else:
                    line = indent + '/// ' + body if body else indent + '///'
                if k == len(run) - 1:
                    line += ' \\endcode'
                out.append(line)
            i = j
            in_list_at = -1
            continue
        if not m and not continuing_list:
            in_list_at = -1
        out.append(indent + '/// ' + escape(s))
        i += 1
    return out


def is_declaration(ln):
    """Whether a line can start a documented declaration."""
    t = ln.text.strip()
    if not t or t.startswith('//') or t.startswith('/*'):
        return False
    if ln.pre:
        return t.startswith('#') and re.match(r'#\s*define\b', t) is not None
    if t.startswith('}') or ACCESS.match(t) or t in ('{', ';'):
        return False
    return ln.doc_scope


def looks_like_code(texts):
    """A block that is commented-out code, not prose."""
    body = [s for s in texts if s.strip()]
    return bool(body) and all(CODE_LIKE.search(s) and indent_of(s) < 2 for s in body)


def filter_source(src):
    raw = src.split('\n')
    lines = scan(raw)
    out = list(raw)
    n = len(lines)
    seen_code = False         # code other than #pragma once / include guard
    file_doc_done = False
    prev_trailing_col = -1    # column of the `//` of the last `///<` made
    i = 0
    while i < n:
        ln = lines[i]
        t = ln.text
        m = COMMENT_ONLY.match(t)
        if m and not ln.pre and ln.comment_col == indent_of(t.replace('\t', ' ')):
            # A block of comment-only lines.
            j = i
            while j < n and COMMENT_ONLY.match(lines[j].text) and not lines[j].pre:
                j += 1
            block = raw[i:j]
            texts = [comment_text(b) for b in block]
            indent = m.group(1)
            if prev_trailing_col >= 0 and ln.comment_col == prev_trailing_col and ln.doc_scope:
                # Continuation of a trailing member comment.
                for k in range(i, j):
                    if lines[k].comment_col != prev_trailing_col:
                        break
                    out[k] = raw[k][:prev_trailing_col] + '///< ' + escape(comment_text(raw[k]))
                    i = k + 1
                prev_trailing_col = -1
                continue
            prev_trailing_col = -1
            if not file_doc_done and not seen_code:
                file_doc_done = True
                if not any(LICENSE.search(s) for s in texts):
                    conv = convert_block(indent, texts)
                    # \file goes at the end of the block's last line: on a
                    # line of its own it would need a line of its own.
                    conv[-1] += r' \file'
                    out[i:j] = conv
                i = j
                continue
            nxt_at = j
            # A comment above `#if X` documents what the #if holds.
            while nxt_at < n and lines[nxt_at].pre and re.match(r'\s*#\s*if(n?def)?\b', lines[nxt_at].text):
                nxt_at += 1
            nxt = lines[nxt_at] if nxt_at < n else None
            if ln.doc_scope and nxt is not None and is_declaration(nxt):
                # Leading rulers and tool directives stay plain comments.
                k = 0
                while k < len(texts) and (RULER.match(texts[k]) or TOOL_DIRECTIVE.match(texts[k])):
                    k += 1
                rest = texts[k:]
                if rest and any(s.strip() for s in rest) and not looks_like_code(rest):
                    out[i + k:j] = convert_block(indent, rest)
            i = j
            continue

        stripped = t.strip()
        if stripped and not stripped.startswith('//') and not (
                ln.pre and re.match(r'#\s*(pragma\s+once|ifndef|define)\b', stripped)):
            seen_code = True
        prev_trailing_col = -1
        if ln.comment_col >= 0 and not ln.pre and ln.doc_scope:
            code = ln.code.rstrip()
            text = comment_text(t[ln.comment_col:])
            ends_member = re.search(r'[;,]$|\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(final\s*)?\{.*\}$|\{\s*\}$', code)
            only_brace = re.match(r'^\s*\}\s*;?\s*$', code)
            after_doc_scope = i + 1 >= n or lines[i + 1].doc_scope
            if (ends_member and not only_brace and after_doc_scope and not t[ln.comment_col:].startswith('///')
                    and not t[ln.comment_col:].startswith('//!') and not TOOL_DIRECTIVE.match(text)):
                out[i] = t[:ln.comment_col] + '///< ' + escape(text)
                prev_trailing_col = ln.comment_col
        i += 1
    return '\n'.join(out)


def main():
    if len(sys.argv) != 2:
        sys.stderr.write('usage: doc_filter.py FILE\n')
        return 2
    with open(sys.argv[1], encoding='utf-8') as f:
        src = f.read()
    sys.stdout.write(filter_source(src))
    return 0


if __name__ == '__main__':
    sys.exit(main())
