# FlexMDM on maze_medium (paper success 90.4%) with flexmdm_maze_easy.py's recipe and sampler: test success 17.4%
# before the neighbour_mix fix (star_superseded/flexmdm_maze_medium_seed1337_before_neighbour_fix.json); the
# medium row is now flexmdm_maze_medium_muon.py's, which takes this file as its base.
base = "configs/flexmdm_maze_easy.py"  # everything else as there
out_dir = "out/flexmdm_maze_medium"
dataset = "maze/medium"
steps = 192  # two per position of the 96-cell limit
