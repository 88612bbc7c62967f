"""Grouped 5-fold cross-validation over a modality's train/ + val/, with out-of-fold predictions kept.

Recipes, epoch budgets, thresholds and decision rules are chosen on pooled out-of-fold (OOF)
predictions of the same folds for every candidate, not on one small test slice.

    python -m cnn_model.training.crossval folds --modality breast            # write model_runs/breast/folds.json
    python -m cnn_model.training.crossval fold --modality breast --candidate baseline --fold 0
    python -m cnn_model.training.crossval summary --modality breast          # mean ± sd and pooled OOF figures

Folds: every image of a group (lesion, patient, smear image, or for BUSI a near-duplicate
cluster) lands in one fold. Groups are placed largest first by a seeded greedy balance that
keeps each class's share per fold close to a fifth; equal-sized groups are taken in salted-sha1
order, so the assignment depends only on the sample list. folds.json (path -> fold) is written
once, committed, and read back by every fold run, so every candidate sees the same folds.

Inside a fold, nothing looks at the held-out fold to choose anything. The default epoch rule is
"fixed": the recipe's full epoch budget, the last epoch's weights kept (TrainingConfig
select_on_val=False). The held-out fold is passed to training only so that its figures are
logged after every epoch (they choose nothing in that fold; averaged over the five folds they
show which fixed budget a recipe should get). The "inner_val" rule instead keeps aside 15% of
the training folds' groups (salted sha1), picks the epoch on those with early stopping, and
scores the held-out fold once at the end.

Fold models go to training_runs_cv/ (git-ignored); OOF predictions and metrics to
model_runs/<modality>/<candidate>/fold<K>.npz / .json.
"""
