"""`make bench`: the performance suite (issue 6). Each benchmark reports ratios measured side by side in
one run; `python -m bench` writes bench/results.json and bench/results.md, and the README shows the table.
`make test` runs every benchmark in a tiny configuration (tests/bench) so that none of them can rot."""
