"""The hackathon: challenge data, scorer, leaderboard, rehearsal (stage 11)."""
