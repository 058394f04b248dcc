import unittest

from words import count, resolve


class WordsTest(unittest.TestCase):
    def test_counts_lines_and_words(self):
        self.assertEqual(count(""), (0, 0))
        self.assertEqual(count("one two\nthree"), (2, 3))
        self.assertEqual(count("a\n\n  b  \n"), (3, 2))

    def test_paths_stay_in_the_workspace(self):
        self.assertEqual(resolve("/ws", "a/b.txt"), "/ws/a/b.txt")
        self.assertEqual(resolve("/ws", "/ws/./a/../b"), "/ws/b")
        for bad in ["../x", "/etc/passwd", "/wsx/file"]:
            with self.assertRaises(ValueError) as refused:
                resolve("/ws", bad)
            self.assertIn("outside the workspace /ws", str(refused.exception))


if __name__ == "__main__":
    unittest.main()
