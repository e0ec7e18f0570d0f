"""Synthetic scenes (coloured shapes) and the task texts the nano model is trained and evaluated on."""
from scenes.generate import Scene, SceneObject, make_scene
