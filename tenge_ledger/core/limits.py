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
