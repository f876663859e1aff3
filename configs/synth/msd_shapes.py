# Multi-student distillation (MSD, METHODS.md section 3) of the 2-rectified flow on the shapes data at
# 32 px: configs/synth/distill_shapes.py with K = 2 one-step students of the same size as its single
# one. The classes split into consecutive blocks (boat, train, aeroplane | bird, bottle, person: set
# model.student_groups to choose); a pair or prompt goes to the student of the first class it names,
# so each student is distilled on its own conditions only, and the prompt picks the student when
# sampling. Both students start from the 2-RF weights and share the text encoder; each training batch
# is split between them, so a step costs what a single student's does. Sampled with one Euler step
# at guidance 1 (a prompt naming no class has no student).
#   python tools/train.py configs/synth/msd_shapes.py --work-dir work_dirs/msd2 \
#       --data-root work_dirs/rf1_pairs --load-from work_dirs/rf2
_base_ = ["distill_shapes.py"]

model = dict(name="rf2-msd2", num_students=2)
