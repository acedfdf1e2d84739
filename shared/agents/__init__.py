"""Agents and their tasks: state changes, the task workflow's names, questions and answers, alert rules,
Temporal, push notifications."""
