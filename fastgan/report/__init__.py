"""`fastgan report`: one self-contained HTML page comparing runs (config differences, curves,
sample timelines, warnings) and bench results. `runs` reads, `plots` draws, `page` writes HTML."""
