"""
bench/clone_accounts.py DB N: copies the row of account user1 in starling's SQLite
database DB under the names user2..userN (the same credentials, so the same password),
as benchmarks need many accounts and starlingctl takes ~27 ms each (a process, two
PBKDF2s, a commit). Existing names are left alone. Prints how many accounts there are.
"""
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1])
cols = [r[1] for r in db.execute("PRAGMA table_info(accounts)")]
rest = ", ".join("a." + c for c in cols if c != "user")
db.execute(f"""WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
               INSERT OR IGNORE INTO accounts ({", ".join(cols)})
               SELECT 'user' || i, {rest} FROM n, accounts a WHERE a.user = 'user1'""",
           (int(sys.argv[2]),))
db.commit()
print(f"{db.execute('SELECT count(*) FROM accounts').fetchone()[0]} accounts")
