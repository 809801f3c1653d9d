"""Every bound the ledger enforces, in one place, unit last (TigerBeetle's habit)."""

# Money. 10^16 tiyn is 100 trillion KZT: above any plausible single amount, far below int64's 9.2 * 10^18,
# so sums of many maximal amounts still fit a PostgreSQL bigint.
amount_tiyn_max = 10**16
# Money in circulation at most: 10^15 KZT, some 25 times all the tenge there is. Every balance is at most this
# and the central bank's at least its negative, and the running totals (issued, redeemed, flows through an
# account) have 92 times this before they reach int64's 9.2 * 10^18: nothing the ledger sums overflows a
# signed 64-bit integer in SQLite or PostgreSQL (SQLite would silently turn it into a float; the schema refuses
# that too).
supply_tiyn_max = 10**17
tiyn_per_kzt = 100

# Names.
handle_length_max = 64
tag_length_max = 64
operation_id_length_max = 128
memo_length_max = 256
attr_key_length_max = 64
attr_value_length_max = 256
attrs_count_max = 32
ledger_name_length_max = 128
witness_name_length_max = 128  # a witness's key name in signed notes
echoed_input_length_max = 40  # characters of a bad input an error message quotes back
escrow_holders_max = 16  # holders of an escrowed ledger's key shares (`init --share-to`)
escrow_ceremony_id_length_max = 64  # characters of a key generation ceremony's id (`tenge escrow deal`)
escrow_sealed_share_bytes_max = 400  # one sealed share of a dealing (~190 bytes; more is not one)

# Operations.
batch_operations_max = 1_000
hold_timeout_s_max = 366 * 24 * 3600
submit_chunk_operations = 1_000  # operations committed per database transaction by apply_many
committer_chunks_min = 2  # apply_many hands writes to a store's committer only beyond this many chunks
committer_operations_min = 10_000  # ... and from this many operations on: its process takes ~0.15 s to start
committer_chunks_ahead_max = 64  # chunks worked out ahead of the committer's confirmations at most
write_conflict_retries_max = 8
calm_chunks_min = 8  # chunks without another writer before a ledger stops queueing for the write lock first
decision_texts_kept_max = 4_096  # policy decisions whose stored JSON a ledger keeps made
state_buckets_max = 2_000_000  # buckets a ledger keeps in memory between chunks before it starts afresh
# Buckets moved by their rows' legs cost two statements a row (ChangeSet.legs_from_rows); by upserts, one a bucket
# and the ledger's loop over them. Measured on tenge bench's workloads, the legs cost less where a chunk's rows
# touch about two buckets each (payments among many accounts) and ~10% more where they touch one (a few merchants
# paid by many): a chunk goes by its legs from 1.5 buckets a row (this is twice that, to stay in integers).
legs_buckets_per_row_twice = 3
# Leaves of one run of derived trace leaves (a `trace_runs` row): a chunk's applied operations are one run, a
# longer stretch is cut into runs of this many. Persisted in the schema's CHECK (migration 6): a reader trusts
# no run to be longer, so a run that holds a leaf after idx N starts after N - this.
trace_run_leaves_max = 65_536

# Default holding limits by wallet tier, in tiyn (e-CNY / Sand Dollar style tiers). A ledger may override them.
tier_holding_tiyn_default = {
    0: 10_000_000,  # 100,000 KZT: anonymous wallet
    1: 50_000_000,  # 500,000 KZT: phone-verified
    2: 500_000_000,  # 5,000,000 KZT: remote KYC
    3: amount_tiyn_max,  # full KYC in a branch
}
tier_max = 3

# Policy language (issue 3). A policy file is untrusted input: every dimension is bounded before it runs.
policy_file_bytes_max = 64 * 1024  # one source file
policy_files_max = 64  # files in one policy set
policy_rules_max = 256  # rules in one policy set
policy_depth_max = 32  # nesting of expressions (parentheses, not, and/or chains count one level each)
policy_rule_cost_max = 200  # cost units of one rule; a history window costs window_cost_units
policy_window_cost_units = 20  # a windowed aggregate is one indexed query
policy_window_filters_max = (
    16  # different counterparty filters in one set: each is a total kept on every payment
)
policy_window_s_max = 366 * 24 * 3600  # longest history window a rule may read (a year and a day)
policy_portions_max = 16  # destinations of one split
policy_string_length_max = 256  # a string literal (reasons, tags, attribute values)
policy_list_items_max = 64  # items of a literal list
policy_set_versions_max = 100  # enable/disable history kept in a ledger's settings
basis_points_per_whole = 10_000  # a percentage is written in whole basis points (12.25%): policy/shares.py
policy_literal_digits_max = 24  # digits of a number, money, duration or percentage literal (before any parse)
policy_name_length_max = 64  # a rule, let, def or list name
policy_agency_length_max = 32  # the agency a rule reports to (`report fma "..."`)
policy_let_count_max = 1_024  # let constants in one file: each is folded once, in order
policy_list_entries_max = (
    200_000  # entries of one reference list or table (from a CSV file next to the policy)
)
policy_data_file_bytes_max = 8 * 1024 * 1024  # one reference data file (CSV)
policy_data_files_max = 16  # reference data files of one policy set
policy_set_bytes_max = 16 * 1024 * 1024  # sources and data of one set, stored with each version enabled
shown_text_length_max = 512  # text from a ledger or a policy shown on a terminal is cut to this, escaped
json_int_digits_max = 24  # an integer in a submitted JSON document (amount_tiyn): longer is refused unparsed
# Calendar windows of the policy language (`payer.out_sum(day)`) start at midnight in this offset from UTC:
# all of Kazakhstan keeps UTC+5 since 1 March 2024.
ledger_utc_offset_s = 5 * 3600
policy_share_denominator_max = 1_000  # of a fraction share (`1/3 to ...`)
policy_diff_cases_max = (
    20_000  # generated cases `policy diff` decides with each set (sampled when there are more)
)
