"""The simulated company: products, locations, suppliers and customers.

The world depends on the seed only, so a history and a later live run with the same seed
describe the same company; it is written to ``<lake>/landing/`` as the master-data CSVs of
contracts.md.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from dataclasses import dataclass
from functools import cached_property

REGIONS: tuple[str, ...] = ("east", "central", "west")
# Share of customers living in each region.
REGION_WEIGHTS: tuple[float, ...] = (0.40, 0.33, 0.27)
SEGMENTS: tuple[str, ...] = ("consumer", "small_business", "enterprise")


@dataclass(frozen=True)
class Category:
    """How products of a category are priced, packed and returned."""

    name: str
    code: str
    unit_cost: tuple[float, float]
    markup: tuple[float, float]
    nouns: tuple[str, ...]
    return_factor: float  # relative to the channel's base return rate


CATEGORIES: tuple[Category, ...] = (
    Category(
        "electronics", "ELE", (18.0, 320.0), (1.2, 1.6),
        ("Headphones", "Speaker", "Charger", "Monitor", "Router", "Webcam", "Keyboard"), 1.3,
    ),
    Category(
        "home", "HOM", (4.0, 110.0), (1.5, 2.2),
        ("Lamp", "Kettle", "Pillow", "Blender", "Towel Set", "Cookware Set", "Vacuum"), 1.0,
    ),
    Category(
        "apparel", "APP", (3.5, 55.0), (1.8, 3.0),
        ("T-Shirt", "Jacket", "Sneakers", "Jeans", "Hoodie", "Socks 3-Pack", "Cap"), 2.0,
    ),
    Category(
        "beauty", "BEA", (1.5, 38.0), (1.8, 3.0),
        ("Shampoo", "Face Cream", "Perfume", "Lip Balm", "Sunscreen", "Hair Dryer"), 0.6,
    ),
    Category(
        "toys", "TOY", (2.5, 65.0), (1.5, 2.4),
        ("Puzzle", "Building Set", "Plush Bear", "Board Game", "RC Car", "Doll House"), 1.0,
    ),
    Category(
        "sports", "SPO", (4.0, 180.0), (1.4, 2.2),
        ("Yoga Mat", "Dumbbell", "Tennis Racket", "Bike Helmet", "Water Bottle", "Tent"), 1.0,
    ),
    Category(
        "office", "OFF", (0.9, 75.0), (1.4, 2.0),
        ("Notebook", "Pen Set", "Desk Organizer", "Stapler", "Printer Paper", "Office Chair"), 0.6,
    ),
    Category(
        "grocery", "GRO", (0.8, 14.0), (1.2, 1.5),
        ("Coffee Beans", "Olive Oil", "Pasta", "Tea Box", "Granola", "Dark Chocolate"), 0.3,
    ),
)  # fmt: skip
_ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Pro", "Smart", "Ultra", "Urban", "Travel",
    "Premium", "Everyday", "Mini", "Max", "Organic", "Heritage",
)  # fmt: skip
PRODUCTS_PER_CATEGORY = 30
# Skus ranked by popularity get demand ∝ 1 / rank^s (Zipf).
ZIPF_EXPONENT = 0.9
# Each sku's demand rides a slow yearly wave of its own (amplitude up to ±40 %, random
# phase): over a quarter some skus grow, some fade, some peak, as product life cycles do.
TREND_MAX_AMPLITUDE = 0.4
TREND_PERIOD_DAYS = 365.0


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    unit_cost: float
    unit_price: float
    supplier_id: str
    popularity: float  # share of order lines that pick this sku (sums to 1)
    popularity_rank: int  # 0 = best seller
    case_pack: int  # purchase orders are placed in whole cases
    return_factor: float
    trend_amplitude: float  # 0..TREND_MAX_AMPLITUDE
    trend_phase: float  # radians

    def popularity_on(self, day: int) -> float:
        """The sku's share of order lines on ``day`` (days since the epoch), before normalising."""
        angle = 2 * math.pi * day / TREND_PERIOD_DAYS + self.trend_phase
        return self.popularity * (1 + self.trend_amplitude * math.sin(angle))


@dataclass(frozen=True)
class Location:
    location_id: str
    name: str
    type: str  # "dc" or "store"
    region: str


@dataclass(frozen=True)
class Supplier:
    supplier_id: str
    name: str
    country: str
    lead_time_days: int
    # Not in the master data: how the supplier actually behaves.
    on_time_rate: float
    short_rate: float  # chance a PO line arrives short
    split_rate: float  # chance a PO arrives in several deliveries


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    segment: str
    region: str
    weight: float  # relative ordering frequency within the segment


@dataclass(frozen=True)
class World:
    products: tuple[Product, ...]
    locations: tuple[Location, ...]
    suppliers: tuple[Supplier, ...]
    customers: tuple[Customer, ...]

    @cached_property
    def dcs(self) -> tuple[Location, ...]:
        return tuple(loc for loc in self.locations if loc.type == "dc")

    @cached_property
    def dc_of_region(self) -> dict[str, str]:
        """Each region is served by its own DC."""
        return {loc.region: loc.location_id for loc in self.dcs}

    @cached_property
    def product(self) -> dict[str, Product]:
        return {p.sku: p for p in self.products}

    @cached_property
    def supplier(self) -> dict[str, Supplier]:
        return {s.supplier_id: s for s in self.suppliers}

    @cached_property
    def category_of(self) -> dict[str, str]:
        return {p.sku: p.category for p in self.products}


_DCS = (
    ("DC-1", "Newark DC", "east"),
    ("DC-2", "Dallas DC", "central"),
    ("DC-3", "Reno DC", "west"),
)
_STORES = (
    ("Boston", "east"), ("New York", "east"), ("Philadelphia", "east"),
    ("Chicago", "central"), ("Houston", "central"), ("Denver", "central"),
    ("Seattle", "west"), ("Los Angeles", "west"), ("Phoenix", "west"),
)  # fmt: skip
_DOMESTIC = (("US", (3, 6)), ("MX", (5, 8)), ("CA", (4, 7)))
_OVERSEAS = (("CN", (14, 21)), ("VN", (15, 21)), ("IN", (12, 18)), ("DE", (9, 14)), ("PL", (8, 12)))
_SUPPLIER_WORDS = (
    "Acme", "Northwind", "Bluewater", "Summit", "Pioneer", "Evergreen", "Ironwood", "Harbor",
    "Silverline", "Redstone", "Lakeside", "Brightway", "Goldfield", "Oakridge", "Crescent",
    "Vertex",
)  # fmt: skip
_FIRST_NAMES = (
    "Ana", "Ben", "Chloe", "David", "Elena", "Farid", "Grace", "Hiro", "Isabel", "Jamal", "Kara",
    "Liam", "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
)  # fmt: skip
_LAST_NAMES = (
    "Silva", "Johnson", "Nguyen", "Garcia", "Smith", "Khan", "Müller", "Rossi", "Kim", "Brown",
    "Lopez", "Okafor", "Martin", "Chen", "Novak", "Singh", "Walker", "Dubois", "Tanaka", "Cohen",
)  # fmt: skip
_COMPANY_SUFFIXES = ("Traders", "Retail", "Supply", "Outfitters", "Markets", "Group", "Partners")
CUSTOMERS_PER_SEGMENT = {"consumer": 3000, "small_business": 200, "enterprise": 40}


def _uniform_money(rng: random.Random, low: float, high: float) -> float:
    # Log-uniform: many cheap items, a few expensive ones.
    return round(low * (high / low) ** rng.random(), 2)


def _suppliers(rng: random.Random) -> tuple[list[Supplier], dict[str, list[Supplier]]]:
    suppliers: list[Supplier] = []
    by_category: dict[str, list[Supplier]] = {}
    words = list(_SUPPLIER_WORDS)
    rng.shuffle(words)
    for index, category in enumerate(CATEGORIES):
        pair: list[Supplier] = []
        for source, (country, (low, high)) in (
            ("domestic", rng.choice(_DOMESTIC)),
            ("overseas", rng.choice(_OVERSEAS)),
        ):
            number = len(suppliers) + 1
            reliable = rng.random() < 0.6
            supplier = Supplier(
                supplier_id=f"SUP-{number:03d}",
                name=f"{words[(2 * index + len(pair)) % len(words)]} {category.name.title()}"
                f" {'Co.' if source == 'domestic' else 'Ltd.'}",
                country=country,
                lead_time_days=rng.randint(low, high),
                on_time_rate=rng.uniform(0.85, 0.97) if reliable else rng.uniform(0.55, 0.8),
                short_rate=rng.uniform(0.02, 0.06) if reliable else rng.uniform(0.08, 0.18),
                split_rate=rng.uniform(0.05, 0.25),
            )
            suppliers.append(supplier)
            pair.append(supplier)
        by_category[category.name] = pair
    return suppliers, by_category


def _products(
    rng: random.Random, trends: random.Random, suppliers: dict[str, list[Supplier]]
) -> list[Product]:
    drafts = []
    for category in CATEGORIES:
        names: set[str] = set()
        for number in range(1, PRODUCTS_PER_CATEGORY + 1):
            name = f"{rng.choice(_ADJECTIVES)} {rng.choice(category.nouns)}"
            while name in names:
                name = f"{name} {rng.choice('ABCDEFGHJK')}"
            names.add(name)
            cost = _uniform_money(rng, *category.unit_cost)
            price = round(cost * rng.uniform(*category.markup), 2)
            domestic, overseas = suppliers[category.name]
            supplier = domestic if rng.random() < 0.55 else overseas
            case_pack = 1 if cost > 60 else rng.choice((4, 6, 12) if cost < 8 else (1, 2, 4))
            sku = f"SKU-{category.code}-{number:03d}"
            drafts.append((sku, name, category, cost, price, supplier.supplier_id, case_pack))
    ranks = list(range(len(drafts)))
    rng.shuffle(ranks)
    weights = [1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in ranks]
    total = sum(weights)
    return [
        Product(
            sku=sku,
            name=name,
            category=category.name,
            unit_cost=cost,
            unit_price=price,
            supplier_id=supplier_id,
            popularity=weight / total,
            popularity_rank=rank,
            case_pack=pack,
            return_factor=category.return_factor,
            trend_amplitude=trends.uniform(0.0, TREND_MAX_AMPLITUDE),
            trend_phase=trends.uniform(0.0, 2 * math.pi),
        )
        for (sku, name, category, cost, price, supplier_id, pack), rank, weight in zip(
            drafts, ranks, weights, strict=True
        )
    ]


def _customers(rng: random.Random) -> list[Customer]:
    customers: list[Customer] = []
    for segment, count in CUSTOMERS_PER_SEGMENT.items():
        for _ in range(count):
            number = len(customers) + 1
            if segment == "consumer":
                name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
                weight = 1.0
            else:
                name = f"{rng.choice(_SUPPLIER_WORDS)} {rng.choice(_COMPANY_SUFFIXES)}"
                # Business demand is concentrated: a few accounts order most.
                weight = 1.0 / (1 + rng.randrange(count)) ** 0.8
            region = rng.choices(REGIONS, weights=REGION_WEIGHTS)[0]
            customers.append(Customer(f"C-{number:05d}", name, segment, region, weight))
    return customers


def build_world(seed: int) -> World:
    """The company for ``seed``: same seed, same products, prices, suppliers and customers."""
    rng = random.Random(f"scm-simulator:{seed}:world")
    suppliers, by_category = _suppliers(rng)
    locations = [Location(i, name, "dc", region) for i, name, region in _DCS]
    locations += [
        Location(f"ST-{n:02d}", f"{city} store", "store", region)
        for n, (city, region) in enumerate(_STORES, start=1)
    ]
    return World(
        # trends draw from their own stream, so adding them changed nothing else of the world
        products=tuple(_products(rng, random.Random(f"scm-simulator:{seed}:trends"), by_category)),
        locations=tuple(locations),
        suppliers=tuple(suppliers),
        customers=tuple(_customers(rng)),
    )


def master_data(world: World) -> dict[str, list[list[str]]]:
    """The four master-data files of contracts.md as rows, header first."""
    return {
        "products.csv": [["sku", "name", "category", "unit_cost", "unit_price"]]
        + [
            [p.sku, p.name, p.category, f"{p.unit_cost:.2f}", f"{p.unit_price:.2f}"]
            for p in world.products
        ],
        "locations.csv": [["location_id", "name", "type", "region"]]
        + [[loc.location_id, loc.name, loc.type, loc.region] for loc in world.locations],
        "suppliers.csv": [["supplier_id", "name", "country", "lead_time_days"]]
        + [[s.supplier_id, s.name, s.country, str(s.lead_time_days)] for s in world.suppliers],
        "customers.csv": [["customer_id", "name", "segment", "region"]]
        + [[c.customer_id, c.name, c.segment, c.region] for c in world.customers],
    }


def _csv_bytes(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write_master_data(world: World, landing: str) -> list[str]:
    """Write the CSVs into ``landing`` (a folder or object-store URI); return their paths.

    Local files are replaced atomically, so a loader never reads half a file.
    """
    files = {name: _csv_bytes(rows) for name, rows in master_data(world).items()}
    written = []
    if "://" in landing:
        from scm.storage import filesystem as lake_filesystem

        filesystem, root = lake_filesystem(landing)
        filesystem.create_dir(root, recursive=True)
        for name, data in files.items():
            with filesystem.open_output_stream(f"{root}/{name}") as stream:
                stream.write(data)
            written.append(f"{landing}/{name}")
        return written
    os.makedirs(landing, exist_ok=True)
    for name, data in files.items():
        path = os.path.join(landing, name)
        partial = f"{path}.{os.getpid()}.partial"
        with open(partial, "wb") as handle:
            handle.write(data)
        os.replace(partial, path)
        written.append(path)
    return written
