import unittest

from rules import decide


class DecideTest(unittest.TestCase):
    def test_lock_files_are_not_written_by_hand(self):
        reason = decide("Write", '{"file_path": "/ws/Cargo.lock", "content": ""}')
        self.assertIn("Cargo.lock is written by its package manager", reason)
        self.assertIsNotNone(decide("Edit", '{"file_path": "/ws/web/package-lock.json"}'))

    def test_other_calls_are_allowed(self):
        self.assertIsNone(decide("Write", '{"file_path": "/ws/Cargo.toml"}'))
        self.assertIsNone(decide("Read", '{"file_path": "/ws/Cargo.lock"}'))
        self.assertIsNone(decide("Write", "not json"))


if __name__ == "__main__":
    unittest.main()
