"""The experiments the book's chapters run, one module per chapter.

A chapter calls these functions and plots what they return; the tests call the same
functions and assert the claims the chapter's prose makes, so text and code cannot drift.
"""
