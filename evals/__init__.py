"""The HotpotQA evaluator."""
