"""Rules written by tests: the documentation sections every rule must have, as a suffix."""

SECTIONS = """

## Why it matters
A rule written by a test.

## Known problems
None.

## Fix
Nothing to fix.

## Seed
"测试"
"""
