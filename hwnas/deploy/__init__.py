"""The closed loop: reuse or profile the table, search, export, compile, measure, repeat."""
