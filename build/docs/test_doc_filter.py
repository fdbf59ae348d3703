#!/usr/bin/env python3
"""Checks doc_filter.py on small headers: which // comments become Doxygen
comments, and which stay plain. Run by meson as the test doc_filter (suite
docs); needs nothing but python3."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doc_filter import filter_source  # noqa: E402


def run(src):
    out = filter_source(src)
    assert out.count('\n') == src.count('\n'), 'lines added or removed'
    return out.split('\n')


class DocFilterTest(unittest.TestCase):
    def test_file_comment_becomes_file_doc(self):
        out = run('#pragma once\n// What this is.\n// More.\n\n#include <x>\n')
        self.assertEqual(out[1], '/// What this is.')
        self.assertEqual(out[2], r'/// More. \file')

    def test_license_header_stays(self):
        src = '// Copyright 2024 X\n// SPDX-License-Identifier: Apache-2.0\n#pragma once\n\nint f();\n'
        self.assertEqual(run(src), src.split('\n'))

    def test_block_above_declaration(self):
        out = run('#pragma once\n// File.\n\nnamespace a {\n// Does f.\n// Twice.\nint f();\n}\n')
        self.assertEqual(out[4:6], ['/// Does f.', '/// Twice.'])

    def test_block_before_blank_line_stays(self):
        out = run('#pragma once\n// File.\n\nnamespace a {\n// A note.\n\nint f();\n}\n')
        self.assertEqual(out[4], '// A note.')

    def test_ruler_stays_plain(self):
        out = run('#pragma once\n// F.\nclass c {\n public:\n  // ---- x ----\n  // Does g.\n  void g();\n};\n')
        self.assertEqual(out[4:6], ['  // ---- x ----', '  /// Does g.'])

    def test_trailing_member_comment(self):
        out = run('#pragma once\n// F.\nstruct s {\n  int a;  // the a\n          // and more\n  int b;\n};\n')
        self.assertEqual(out[3], '  int a;  ///< the a')
        self.assertEqual(out[4], '          ///< and more')

    def test_nested_after_access_specifier(self):
        out = run('#pragma once\n// F.\nclass c {\n public:\n  struct o {\n    int a;  // the a\n  };\n};\n')
        self.assertEqual(out[5], '    int a;  ///< the a')

    def test_block_above_conditional(self):
        out = run('#pragma once\n// F.\n\n// The flag.\n#if defined(X)\nint f = X;\n#else\nint f = 0;\n#endif\n')
        self.assertEqual(out[3], '/// The flag.')

    def test_enumerators(self):
        out = run('#pragma once\n// F.\nenum class e {\n  x,  // the x\n  y   // the y\n};\n')
        self.assertEqual(out[3], '  x,  ///< the x')
        self.assertEqual(out[4], '  y   // the y')  # no comma: not taken for a member

    def test_not_inside_function_bodies(self):
        src = ('#pragma once\n// F.\nstruct s {\n  void f() {\n    // step one\n    g();  // why\n  }\n'
               '  int v = [] {\n    // in a lambda\n    return 1;\n  }();\n};\n')
        out = run(src)
        self.assertEqual(out[4], '    // step one')
        self.assertEqual(out[5], '    g();  // why')
        self.assertEqual(out[8], '    // in a lambda')

    def test_not_in_strings(self):
        out = run('#pragma once\n// F.\ninline const char* u = "http://x";\nchar c = \'/\';  // slash\n')
        self.assertEqual(out[2], 'inline const char* u = "http://x";')
        self.assertEqual(out[3], "char c = '/';  ///< slash")

    def test_nolint_and_namespace_end_stay(self):
        out = run('#pragma once\n// F.\nnamespace a {\nstruct s {\n  s(int);  // NOLINT\n};\n}  // namespace a\n')
        self.assertEqual(out[4], '  s(int);  // NOLINT')
        self.assertEqual(out[6], '}  // namespace a')

    def test_commented_out_code_stays(self):
        out = run('#pragma once\n// F.\n\n// old(1);\nint f();\n')
        self.assertEqual(out[3], '// old(1);')

    def test_example_becomes_code(self):
        out = run('#pragma once\n// F.\n//\n//   auto x = f();\n//   g(x);\n//\n// After.\n\nint f();\n')
        self.assertEqual(out[2], r'/// \code{.cpp}')
        self.assertEqual(out[3], '/// auto x = f();')
        self.assertEqual(out[4], r'/// g(x); \endcode')

    def test_list_continuation_is_not_code(self):
        out = run('#pragma once\n// F.\n\n// Two:\n// - one that\n//   goes on\nint f();\n')
        self.assertEqual(out[5], '///   goes on')

    def test_escapes(self):
        out = run('#pragma once\n// loop<T> & `a<b>` \\r\\n @x #1 50%\nint f();\n')
        self.assertEqual(out[1], r'/// loop\<T\> \& `a<b>` \\r\\n \@x \#1 50\% \file')

    def test_quoted_text_is_not_escaped(self):
        out = run('#pragma once\n// F.\n\n// make({"\\r\\n", "<b>"}) or \\r\n// alone.\nint f();\n')
        self.assertEqual(out[3], r'/// make({"\r\n", "<b>"}) or \\r')


if __name__ == '__main__':
    unittest.main()
