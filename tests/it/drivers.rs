//! Real drivers through a real PgBouncer (being written).
