"""What each stored column means, for the column schema the Dagster UI shows on every table asset.

A column name means the same thing in every table it appears in (``artwork_idx`` is always the canonical
artwork index), so descriptions are kept per name; ``TABLE_COLUMNS`` holds the few that differ per table.
"""

from __future__ import annotations

from curatornet_pipeline import tables

COLUMNS: dict[str, str] = {
    # Catalogue and purchases
    "artwork_idx": "Canonical artwork index: the artwork's position when all artworks are sorted by id.",
    "artwork_id": "The artwork's id in the source files.",
    "artist_id": "The artist's id in the source files.",
    "upload_timestamp": "When the artwork was put on sale (Unix seconds); empty when the source has no upload times.",
    "source_row": "Row of the source file this row was read from (0-based), so an error can name it.",
    "user_id": "The customer's id in the source files (a visitor of the app: the id the app gave them).",
    "user_idx": "Index of the user: their position when all users are sorted by id (the users table of the split).",
    "basket_id": "Purchase session: one user and one purchase time.",
    "purchase_timestamp": "When the basket was bought (Unix seconds).",
    "split": "train or test (held-out last basket; excluded: an earlier purchase of a held-out item); "
    "for triplets: train or validation.",
    # Features
    "content_key": "SHA-256 of the image file (or of the vector, for precomputed embeddings): the key under "
    "which an embedding is reused.",
    "embedder": "How the embedding was computed (JSON: source, weights, seed, image size, precision).",
    "embedding": "The 2048-d ResNet50 embedding (penultimate layer).",
    "cluster": "Visual cluster of the artwork (k-means on the PCA vectors), 0 to n_clusters - 1.",
    "pca": "The artwork's z-scored embedding projected on the PCA components.",
    "run": "k-means run number.",
    "seed": "Seed of this k-means run.",
    "silhouette": "Silhouette coefficient of this run's clustering (higher is better separated).",
    "chosen": "Whether this run, the one with the highest silhouette, labels the clusters.",
    "n_clusters": "k of k-means.",
    # Triplets
    "strategy": "Sampling strategy that produced the triplet (1_hidden_basket_item ... 6_single_item_same_artist, "
    "random, random_bpr).",
    "profile_id": "The triplet's profile: a row of the matching profiles table.",
    "items": "The profile's artworks (artwork_idx), in order.",
    "positive": "The artwork (artwork_idx) the profile should rank higher.",
    "negative": "The artwork (artwork_idx) the profile should rank lower.",
    "triplet_hash": "Hash of (profile items, positive, negative): equal triplets share it, so duplicates are dropped.",
    # Models
    "model_id": "The trained model: family, variant and L2 lambda.",
    "variant": "Which triplets the model trained on: six_strategies, strategies_3_and_4 or random_sampling.",
    "run_id": "The Dagster run that wrote the row.",
    "model_run_id": "The training run whose weights computed this vector; a reader refuses vectors of other runs.",
    "l2_lambda": "Weight of the L2 penalty.",
    "trained_at": "When training finished (UTC).",
    "best_epoch": "The epoch with the best validation accuracy, whose weights are kept.",
    "validation_accuracy": "Fraction of validation triplets the model ranks correctly (positive above negative).",
    "device": "Where the model trained (cpu or cuda).",
    "training_seconds": "Wall time of the training.",
    "n_train_triplets": "Training triplets the model saw per epoch.",
    "n_validation_triplets": "Validation triplets that chose the best epoch.",
    "skipped_one_item_triplets": "Triplets VBPR skipped because they carry no user (one-item profiles).",
    "config": "Every setting of the training (JSON), the strategies and the precision used.",
    "lineage": "The runs that produced this model's inputs (JSON).",
    "weights": "The model's weights, loadable with torch.load(weights_only=True).",
    "epoch": "Training epoch, from 1.",
    "train_loss": "Mean BPR loss plus L2 penalty over the epoch.",
    "learning_rate": "Learning rate during the epoch.",
    "seconds": "Wall time of the epoch.",
    "triplets_per_second": "Training throughput during the epoch.",
    "vector": "The 200-d CuratorNet vector (item vector, or the user vector built from the user's profile).",
    # Evaluation
    "method": "Recommender: CuratorNet or VBPR (per lambda and variant), VisRank, Most popular, Random, Oracle.",
    "rank": "Position in the recommendation list, from 1.",
    "score": "The method's score of the artwork for the user; higher is recommended first.",
    "is_hit": "Whether the artwork is in the user's held-out basket.",
    "auc": "Area under the ROC curve of the held-out basket among the candidates (ties count half).",
    "recall_at_20": "Share of the held-out basket in the top 20.",
    "recall_at_100": "Share of the held-out basket in the top 100.",
    "precision_at_20": "Share of the top 20 that is in the held-out basket.",
    "precision_at_100": "Share of the top 100 that is in the held-out basket.",
    "ndcg_at_20": "nDCG of the top 20 (binary gains, ideal over min(basket size, 20)).",
    "ndcg_at_100": "nDCG of the top 100 (binary gains, ideal over min(basket size, 100)).",
    "ndcg_authors_at_20": "nDCG at 20 normalised by the hits found, as the authors' code computed it.",
    "ndcg_authors_at_100": "nDCG at 100 normalised by the hits found, as the authors' code computed it.",
    "n_candidates": "Artworks ranked for the user: on sale at the basket's time, minus their profile.",
    "n_relevant": "Artworks in the user's held-out basket.",
    "protocol": "Which candidates were ranked: the inventory at the basket's time, or the whole catalogue.",
    "n_users": "Evaluation users the row averages over.",
    "method_a": "First method of the pair.",
    "method_b": "Second method of the pair.",
    "metric": "The per-user metric compared.",
    "mean_diff": "Mean per-user difference, method_a minus method_b.",
    "t": "Paired t statistic.",
    "p_value": "Two-sided p-value of the paired t-test.",
    "model": "CuratorNet or VBPR.",
    "guided_method": "The guided model's metric-table label (lambda chosen by validation accuracy).",
    "random_method": "The random-sampling model's metric-table label (lambda chosen by validation accuracy).",
    "guided_auc": "Mean AUC of the guided model.",
    "random_auc": "Mean AUC of the random-sampling model.",
    "auc_difference": "guided_auc minus random_auc.",
    "paper_guided_auc": "The paper's Figure 3 value for the guided model.",
    "paper_random_auc": "The paper's Figure 3 value for the random-sampling model.",
    "paper_p_value": "The paper's p-value.",
    # Demo gallery statistics
    "statistic": "A statistic of the purchase log.",
    "generated": "Its value on the generated demo gallery.",
    "paper": "Its value on the paper's UGallery data.",
    # Serving
    "n_purchases": "Times the artwork was bought.",
    "kind": "one_of_a_kind or print (artworks); purchase or like (interactions).",
    "availability_rule": "Why the artwork is or is not on sale.",
    "available": "Whether the gallery can sell the artwork now.",
    "image_file": "The artwork's image file; empty when the source has no images.",
    "display_file": "A larger image for the artwork page (display/<artwork_id>.jpg of the source folder); "
    "empty when the source has none (the page then shows image_file).",
    "title": "The artwork's title (optional items.csv / artwork_details.csv column); empty: shown as Untitled.",
    "artist_name": "The artist's name as customers read it (optional column); empty: the artist has no name shown.",
    "year": "Year the artwork was made (optional column).",
    "medium": "Medium, e.g. oil on canvas or an editioned print (optional column).",
    "size": "Size as written in the source, e.g. 40 x 50 cm (optional column).",
    "price": "Price in the currency column (optional column); empty: price on request.",
    "currency": "Three-letter currency code of the price (optional column).",
    "shop_url": "The artwork's page in the gallery's shop (optional column); the app's Buy/Enquire link.",
    "timestamp": "When the purchase or like happened (Unix seconds).",
    "similar_artwork_id": "An available artwork the serving model finds similar (its one-artwork profile's top pick).",
    # Cold-start protocols (new customers, new artworks)
    "held_out_fraction": "Share of the repeat buyers held out of all training as new customers.",
    "cutoff_quantile": "Quantile of the purchase times taken as the cut-off of the new-artwork protocol.",
    "cutoff": "The cut-off time: models train on purchases at or before it and are evaluated after it.",
    "n_training_purchases": "Purchases (rows) the protocol's models trained on.",
    "n_training_users": "Customers with a purchase in the protocol's training rows.",
    "n_known_artworks": "Artworks the protocol's models may know (in a training triplet at all).",
    "n_target_artworks": "Distinct artworks in the evaluated baskets.",
    "n_target_artworks_new": "Of those, artworks the models never knew (uploaded after the cut-off, not bought before).",
    "fraction_target_purchases_new": "Share of the evaluated purchases that are of artworks new to the models.",
    "curatornet_validation_accuracy": "Validation accuracy of the protocol's retrained CuratorNet.",
    "vbpr_validation_accuracy": "Validation accuracy of the protocol's retrained VBPR.",
    "fold_in_steps": "Adam steps of VBPR fold-in per new customer (all customers at once).",
    "fold_in_loss_before": "BPR loss of VBPR on the new customers' profile pairs with zero user vectors (no fold-in).",
    "fold_in_loss_after": "The same loss after fold-in.",
    "n_profile_items": "Distinct artworks in the user's profile (what CuratorNet and VisRank read).",
    "n_relevant_new": "Artworks of the evaluated basket that are new to the models.",
    "auc_diff_vs_curatornet": "Mean per-user AUC of the method minus CuratorNet's.",
    "auc_p_value_vs_curatornet": "Paired t-test of per-user AUC against CuratorNet (two-sided).",
    "ndcg_at_20_diff_vs_curatornet": "Mean per-user nDCG@20 of the method minus CuratorNet's.",
    "ndcg_at_20_p_value_vs_curatornet": "Paired t-test of per-user nDCG@20 against CuratorNet (two-sided).",
    "recall_at_20_diff_vs_curatornet": "Mean per-user recall@20 of the method minus CuratorNet's.",
    "recall_at_20_p_value_vs_curatornet": "Paired t-test of per-user recall@20 against CuratorNet (two-sided).",
    "serving_step": "What the method must compute before it can rank for the newcomers (timed in serving_seconds).",
    "serving_seconds": "Wall time of that step over all the protocol's users.",
    "scoring_seconds": "Wall time of ranking every user's candidates.",
    # Bookkeeping
    "table_name": "The DuckDB table the row describes.",
    "partition_key": "The table's partition (a triplet strategy or a model variant); empty for whole tables.",
    "inputs": "The tables (and their fingerprints) this table was computed from (JSON).",
    "fingerprint": "A fingerprint of the table's contents when written.",
    "row_count": "Rows the write stored.",
    "written_at": "When the write was committed (UTC).",
    # Beyond accuracy (evaluation.metric_table)
    "artist_diversity_at_20": "Mean over users of distinct artists / works in the method's top 20 (1: no artist "
    "twice).",
    "catalogue_coverage_at_20": "Share of all artworks that appear in at least one of the method's top-20 lists.",
    # Online metrics
    "model_version": "The serving model that showed the list: model id @ the first 8 characters of its training "
    "run (unknown: a click whose view was not recorded).",
    "position": "Place in the recommended list, 1 = first.",
    "impressions": "Views of a recommended work at this position (one per work shown, per page shown).",
    "clicks": "Clicks on a recommended work shown at this position.",
    "click_through": "clicks / impressions.",
    "conversions": "Impressions followed by a like or purchase of the work by the same customer within the window "
    "(24 h).",
    "conversion_rate": "conversions / impressions.",
    "first_view": "The earliest view counted (UTC).",
    "last_view": "The latest view counted (UTC).",
}

TABLE_COLUMNS: dict[str, str] = {
    f"{tables.ITEM_EMBEDDINGS}.vector": "The artwork's 200-d CuratorNet item vector under model_id.",
    f"{tables.USER_VECTORS}.vector": "The user's 200-d CuratorNet vector from their training profile under model_id.",
    f"{tables.SERVING_ITEM_VECTORS}.vector": "The artwork's item vector under the serving model.",
    f"{tables.SERVING_USER_VECTORS}.vector": "The customer's user vector from every purchase and like, under the "
    "serving model.",
    f"{tables.CLUSTERING_RUNS}.n_clusters": "k of k-means (the same for every run).",
    f"{tables.METRIC_TABLE}.n_users": "Evaluation users the method was scored on.",
    **{
        f"{table}.protocol": "Cold-start protocol: new_customers (held out of training) or new_artworks "
        "(trained before a cut-off time)."
        for table in tables.ALL_TABLES
        if table.partition_column == "protocol"
    },
    f"{tables.COLD_START_PER_USER_METRICS}.n_relevant": "Artworks in the user's evaluated basket.",
    f"{tables.COLD_START_USERS}.n_relevant": "Artworks in the user's evaluated basket.",
    f"{tables.COLD_START_TRAINING_PURCHASES}.split": "The label the sampler read: train, or (new customers) "
    "test / excluded for the other customers' held-out baskets, which no triplet uses.",
    f"{tables.NEW_CUSTOMER_METRICS}.training_seconds": "Training time of the model behind the method, the "
    "retraining a new customer would need where the method has per-user parameters.",
    f"{tables.NEW_ARTWORK_METRICS}.training_seconds": "Training time of the model behind the method, the "
    "retraining a new artwork would need where the method has per-item parameters.",
}


def column_description(table: str, column: str) -> str | None:
    """The description of ``column`` of ``table`` (a qualified table name), None when there is none."""
    return TABLE_COLUMNS.get(f"{table}.{column}", COLUMNS.get(column))
