"""The standalone Temporal worker (`python -m worker`): runs agentTaskWorkflow and its activities."""
