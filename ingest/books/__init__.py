"""Full-depth order books, venue-neutral: the book state a collector keeps in memory
(`book.py`) and its rebuild at a chosen time from stored snapshots and updates (`rebuild.py`).

The venue decides what a frame means (snapshot, update, heartbeat, a gap in its sequence);
this package only applies levels and prints books.
"""
