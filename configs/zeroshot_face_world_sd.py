# ZeroShot (paper Sec. 3.1) on the Stable Diffusion features of a local
# diffusers folder (e.g. a saved SD-1.5); see configs/dldpp_face_world_sd.py.
_base_ = ['./zeroshot_face_world_cpu.py']

# the paper's uniform pixels in the RoI (the CPU config samples corners)
model = dict(
    samples='random',
    samples_per_image=200,
    backbone=dict(
        _delete_=True,
        type='StableDiffusionBackbone',
        pretrained='checkpoints/stable-diffusion-v1-5',
        agg_channels=384,
        out_stride=4,
        sd_input_size=512))
