"""The ground floor: settings, the shared vocabulary (every label, annotation and taint
key, node classes and pod roles), logs, metrics, time parsing, and the supervisor that
owns every background task.

It imports nothing of ours from outside `core`: every other layer may import it.
"""
