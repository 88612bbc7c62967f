"""Outside systems the managers talk to, each behind a small interface of ours."""
