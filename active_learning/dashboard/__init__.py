"""The project dashboard (issue 17): model, data quality, people and progress panels, and the
plots drawn from the same data as their tables. Reads stored rows only; light to import."""
