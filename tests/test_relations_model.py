"""The relation model (relations/): as good on its held-out split as its card says, right on each
relation and each distractor in sentences written here (not in training), and calm on bad input."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
import torch
import yaml

from relations import RELATIONS, Relation, RelationModel, split_sentences, vendor_aliases
from relations.model import default_artefact
from relations.package_data import DATA, HELDOUT_FILE, METRICS_FILE, package_path
from relations.training.evaluate import end_to_end
from relations.training.generate import Example, dataset

TOLERANCE = 0.005
VENDOR = "Harbor & Finch Customer Care"


@pytest.fixture(scope="module")
def model() -> Iterator[RelationModel]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two spinning threads on a shared machine run many times slower
    try:
        yield RelationModel.load(device="cpu")
    finally:
        torch.set_num_threads(threads)


def heldout() -> list[Example]:
    lines = (default_artefact() / HELDOUT_FILE).read_text(encoding="utf-8").splitlines()
    return [Example.from_json(json.loads(line)) for line in lines]


def only(found: list[Relation], brand: str) -> list[Relation]:
    return [r for r in found if brand.lower() in r.brand.lower() or r.brand.lower() in brand.lower()]


@pytest.mark.slow
def test_heldout_figures_meet_targets_and_match_the_card(model: RelationModel) -> None:
    stated = json.loads((default_artefact() / METRICS_FILE).read_text())["end_to_end"]
    measured = end_to_end(model, heldout())
    assert measured["items"] == stated["items"]
    for key in ("precision", "recall"):
        assert measured["detection"][key] >= 0.9
        assert measured["detection"][key] == pytest.approx(stated["detection"][key], abs=TOLERANCE)
    for label in RELATIONS:
        assert measured["per_label"][label]["f1"] == pytest.approx(stated["per_label"][label]["f1"], abs=TOLERANCE)


def test_heldout_split_is_unseen_wording_and_names() -> None:
    examples = heldout()
    assert examples == dataset("heldout")  # the committed file is what the seeded generator writes
    names = yaml.safe_load(package_path(*DATA, "names.yaml").read_text())
    train_names = {v for values in names["train"].values() for v in values}
    held_names = {v for values in names["heldout"].values() for v in values}
    assert not train_names & held_names
    prefixes = [k for k in names["train"] if k.endswith("_prefixes")]
    assert not {w for k in prefixes for v in names["train"][k] for w in v.split()} & {
        w for k in prefixes for v in names["heldout"][k] for w in v.split()}
    train_texts = {e.text for e in dataset("train")}
    assert not train_texts & {e.text for e in examples}
    assert all(e.template.startswith("heldout/") for e in examples)


def test_committed_artefact_is_small() -> None:
    heads = default_artefact() / "heads.safetensors"
    assert heads.stat().st_size < 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("sentence", "brand", "relation"),
    [
        ("Northwind Air has picked Harbor & Finch to look after its customers from 1 March 2022.", "Northwind Air", "started"),
        ("Skylark Airways signs a customer care contract with Harbor & Finch Customer Care.", "Skylark Airways", "started"),
        ("Fennel Bank has renewed its contract with Harbor & Finch for three more years.", "Fennel Bank", "renewed"),
        ("Parcelwing expands its deal with Harbor & Finch to include live chat.", "Parcelwing", "expanded"),
        ("Corvid Telecom ended its contract with Harbor & Finch in March 2025.", "Corvid Telecom", "ended"),
        ("Harbor & Finch runs customer support for Larkspur Home.", "Larkspur Home", "client"),
        ("Our clients include Tidewater Energy and Mossbank Insurance.", "Tidewater Energy", "client"),
    ],
)
def test_each_relation_on_unseen_sentences(model: RelationModel, sentence: str, brand: str, relation: str) -> None:
    found = only(model.extract(sentence, VENDOR), brand)
    assert found, f"nothing found for {brand} in {sentence!r}"
    assert found[0].relation == relation
    assert 0.5 <= found[0].confidence <= 1.0
    assert found[0].evidence == sentence


@pytest.mark.parametrize(
    ("sentence", "brand"),
    [
        ("Harbor & Finch has partnered with Zendrix Cloud to roll out AI routing.", "Zendrix Cloud"),  # partner
        ("Harbor & Finch won the gold award at the Contact Centre Excellence Awards.", "Contact Centre Excellence"),  # award
        ("Harbor & Finch runs its contact centres on Ticketly's cloud software.", "Ticketly"),  # technology supplier
        ("Harbor & Finch and Brightline Contact Group compete for airline contracts.", "Brightline Contact Group"),  # competitor
        ("Unlike Plumtree Eats, Harbor & Finch never offshores its customer service.", "Plumtree Eats"),  # unlike
        ("Copperleaf Hotels denied that it had hired Harbor & Finch.", "Copperleaf Hotels"),  # negation
    ],
)
def test_each_distractor_is_not_a_client(model: RelationModel, sentence: str, brand: str) -> None:
    assert only(model.extract(sentence, VENDOR), brand) == []


@pytest.mark.xfail(strict=True, reason="known limit (model card): distractors worded unlike any training template")
@pytest.mark.parametrize(
    ("sentence", "brand"),
    [
        ("Harbor & Finch agents handle tickets in Ticketly's helpdesk software.", "Ticketly"),
        ("Unlike Plumtree Eats, Harbor & Finch answers every email within an hour.", "Plumtree Eats"),
    ],
)
def test_distractors_in_new_wording_still_fool_it(model: RelationModel, sentence: str, brand: str) -> None:
    assert only(model.extract(sentence, VENDOR), brand) == []


def test_page_text_channels_dates_and_switch(model: RelationModel) -> None:
    page = ("News\n\nOakhollow Outfitters moves its customer service from Quillstone Outsourcing to "
            "Harbor & Finch in June 2023. The company will also add email support next year.\n"
            "Harbor & Finch will also handle Granite Trust Savings's live chat from last month.")
    found = model.extract(page, VENDOR, page_date=dt.date(2024, 5, 20))
    started = only(found, "Oakhollow Outfitters")
    assert started and started[0].relation == "started"
    assert started[0].date == dt.date(2023, 6, 1) and started[0].date_precision == "month"
    assert only(found, "Quillstone") == []  # the vendor being left is not a client of this vendor
    chat = only(found, "Granite Trust Savings")
    assert chat and chat[0].scope == "chat" and chat[0].channels == ("chat",)
    assert chat[0].date == dt.date(2024, 4, 1)
    left = only(model.extract(page, "Quillstone Outsourcing"), "Oakhollow Outfitters")
    assert left and left[0].relation == "ended"


def test_gazetteer_finds_a_brand_the_tagger_might_miss(model: RelationModel) -> None:
    sentence = "Harbor & Finch provides customer care for bluepeak mobile."
    found = only(model.extract(sentence, VENDOR, known_brands=["Bluepeak Mobile"]), "bluepeak mobile")
    assert found and found[0].brand == "bluepeak mobile"
    assert any(m.source == "gazetteer" for m in model.mentions(sentence, ["Bluepeak Mobile"]))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "Northwind Air selects a new contact centre provider for its customers.",  # no vendor mention
        "哈伯芬奇客户服务公司将从三月起为北风航空提供客户服务。",
        "Harbor & Finch übernimmt ab März den gesamten Kundenservice von Northwind Air in Deutschland und Österreich.",
    ],
)
def test_bad_input_gives_nothing(model: RelationModel, text: str) -> None:
    assert model.extract(text, VENDOR) == []


def test_one_megabyte_of_text_is_read_quickly_and_calmly(model: RelationModel) -> None:
    filler = "The weather was mild and the trains ran on time across the region all week. " * 14_000
    text = filler[: 1_000_000] + "\nHarbor & Finch provides customer care for Northwind Air.\n"
    result = model.analyse(text, VENDOR)
    assert result.sentences > 10_000
    assert result.counts["no_vendor_mention"] == result.sentences - 1
    assert [r.brand for r in result.relations if r.confidence >= 0.5] == ["Northwind Air"]


def test_blank_vendor_name_is_empty_input(model: RelationModel) -> None:
    result = model.analyse("Harbor & Finch provides customer care for Northwind Air.", "  ")
    assert result.relations == [] and result.counts == {"empty_input": 1}


def test_vendor_aliases_and_sentences() -> None:
    assert vendor_aliases("Harbor & Finch Customer Care")[-1] == "Harbor & Finch"
    assert "Meridian" in vendor_aliases("Meridian Voice Services")
    assert "Customer" not in vendor_aliases("Customer Care Ltd")
    assert split_sentences("Our clients\nNorthwind Air. Skylark Airways is one too.") == [
        "Our clients", "Northwind Air.", "Skylark Airways is one too."]
