"""Dataset formats as pure code (rows in, rows out; no Django): how rankings become preference
pairs (`pairs`), the row shape of each format and the Anthropic HH transcript (`formats`), and
streaming JSONL/Parquet writers whose files `datasets.load_dataset` reads back (`writers`)."""
