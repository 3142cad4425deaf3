"""Classification's own parts, as centernet/ holds detection's: its transforms, a trained
classifier applied (predict, evaluate, labelled samples), its robustness sweep and the course's
three-panel picture. The task itself is tasks/classify.py."""
