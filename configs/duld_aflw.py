# D-ULD (paper Sec. 3.2) on aflw: bootstrapping 50k -> self-training 100k
# with K-means pseudo-labels every 5000 iterations.
_base_ = ['./dldpp_aflw.py']
stages = [{{_base_.bootstrap_stage}}, {{_base_.duld_stage}}]
model = dict(pose_vae=None, stages=stages)
