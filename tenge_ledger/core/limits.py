"""Every bound the ledger enforces, in one place, unit last (TigerBeetle's habit)."""

# Money. 10^16 tiyn is 100 trillion KZT: above any plausible single amount, far below int64's 9.2 * 10^18,
# so sums of many maximal amounts still fit a PostgreSQL bigint.
amount_tiyn_max = 10**16
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
escrow_holders_max = 16  # holders of an escrowed ledger's key shares (`init --share-to`)

# Operations.
batch_operations_max = 1_000
hold_timeout_s_max = 366 * 24 * 3600
submit_chunk_operations = 1_000  # operations committed per database transaction by apply_many
write_conflict_retries_max = 8

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
policy_window_s_max = 366 * 24 * 3600  # longest history window a rule may read (a year and a day)
policy_portions_max = 16  # destinations of one split
policy_string_length_max = 256  # a string literal (reasons, tags, attribute values)
policy_list_items_max = 64  # items of a literal list
policy_set_versions_max = 100  # enable/disable history kept in a ledger's settings
basis_points_per_whole = 10_000  # percentages are integer basis points: 55% = 5500, 12.5% = 1250
