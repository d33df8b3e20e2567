"""Fine-tuning of Araft adapters with TRL (SFT, then DPO)."""
