"""EXACT's own Python client (exact-sync 0.0.41, unchanged) against a running Exact server.

Usage: compat.py URL PNG SVS
Drives teams, products, image sets, annotation types, uploads, annotations (one by one, as a
list, paged past 1,000), partial updates, verdicts, deletion, thumbnail, slide information and
the download, through the client's own API classes. Exits non-zero at the first difference.
"""
import filecmp
import sys
import tempfile
import uuid
from pathlib import Path

from exact_sync.v1.api.annotation_types_api import AnnotationTypesApi
from exact_sync.v1.api.annotations_api import AnnotationsApi
from exact_sync.v1.api.image_sets_api import ImageSetsApi
from exact_sync.v1.api.images_api import ImagesApi
from exact_sync.v1.api.products_api import ProductsApi
from exact_sync.v1.api.teams_api import TeamsApi
from exact_sync.v1.api.users_api import UsersApi
from exact_sync.v1.api.verifications_api import VerificationsApi
from exact_sync.v1.api_client import ApiClient
from exact_sync.v1.configuration import Configuration
from exact_sync.v1.models import AnnotationType, ImageSet, Product, Team
from exact_sync.v1.models.annotation import Annotation

url, png, svs = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])

configuration = Configuration()
configuration.username = "exact"
configuration.password = "exact"
configuration.host = url
client = ApiClient(configuration)

users = UsersApi(client)
teams = TeamsApi(client)
products = ProductsApi(client)
image_sets = ImageSetsApi(client)
types = AnnotationTypesApi(client)
images = ImagesApi(client)
annotations = AnnotationsApi(client)
verifications = VerificationsApi(client)


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {what}")


me = users.list_users(username="exact").results[0]
check(me.username == "exact", "the default admin logs in with Basic auth")

team = teams.create_team(body=Team(name="Compat team"))
check(team.id > 0 and team.name == "Compat team", "a team is created with its name only")
image_set = image_sets.create_image_set(body=ImageSet(name="Compat set", team=team.id))
check(image_set.team == team.id, "an image set is created in the team")
product = products.create_product(
    body=Product(name="Compat product", team=team.id, imagesets=[image_set.id])
)
check(product.imagesets == [image_set.id], "a product is linked to the set")
box = types.create_annotation_type(
    body=AnnotationType(name="mitosis", product=product.id, vector_type=1)
)
check(box.vector_type == 1 and box.product == product.id, "an annotation type is created")
check(
    [t.id for t in types.list_annotation_types(product=product.id).results] == [box.id],
    "the type is listed by product",
)

uploaded = images.create_image(file_path=str(png), image_type=0, image_set=image_set.id).results
check(len(uploaded) == 1 and uploaded[0].width == 640 and uploaded[0].height == 480,
      "a PNG is uploaded and measured")
png_image = uploaded[0]
slide = images.create_image(file_path=str(svs), image_type=0, image_set=image_set.id).results[0]
check((slide.width, slide.height) == (4000, 3000) and slide.mpp and slide.mpp > 0,
      "a generated SVS is uploaded with its size and resolution")
listed = images.list_images(image_set=image_set.id).results
check(sorted(i.id for i in listed) == sorted([png_image.id, slide.id]), "the set lists both images")

first = annotations.create_annotation(
    body=Annotation(
        annotation_type=box.id,
        image=png_image.id,
        vector={"x1": 10, "y1": 20, "x2": 60, "y2": 80},
        unique_identifier=str(uuid.uuid4()),
    )
)
check(first.id > 0 and first.vector["x2"] == 60, "one annotation is created")
second = annotations.create_annotation(
    body=Annotation(annotation_type=box.id, image=png_image.id,
                    vector={"x1": 100, "y1": 100, "x2": 120, "y2": 140})
)
check(len(second.unique_identifier) == 36, "an annotation without a UUID gets one")

batch = []
for i in range(1100):
    x, y = (i % 50) * 12, (i // 50) * 20
    batch.append({"annotation_type": box.id, "image": slide.id,
                  "vector": {"x1": x, "y1": y, "x2": x + 10, "y2": y + 10},
                  "unique_identifier": str(uuid.uuid4())})
created = client.call_api(
    "/api/v1/annotations/annotations/", "POST", body=batch,
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True,
)
check(len(created) == 1100, "a list of 1,100 annotations is created in one request")

everything = annotations.list_annotations(pagination=False, image=slide.id)
check(everything.count == 1100 and len(everything.results) == 1100
      and len({a.id for a in everything.results}) == 1100,
      "pagination=False walks every page of 1,100 annotations")

changed = annotations.partial_update_annotation(
    first.id, vector={"x1": 12, "y1": 20, "x2": 60, "y2": 80}, description="checked")
check(changed.vector["x1"] == 12 and changed.description == "checked", "a partial update")
again = annotations.retrieve_annotation(first.id)
check(again.vector["x1"] == 12, "the update is read back")

# exact-sync 0.0.41's create_verification puts its fields in form parameters but sends them
# with a JSON content type, so its REST layer drops them and posts an empty body (against EXACT
# too). The same client call with the form content type the method lists second:
verdict = client.call_api(
    "/api/v1/annotations/verifications/", "POST",
    post_params=[("annotation", first.id), ("verified", True)],
    header_params={"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="Verification", _return_http_data_only=True,
)
check(verdict.annotation == first.id and verdict.verified is True, "a verification")
check(verifications.list_verifications(annotation=first.id).count == 1, "the verification is listed")

annotations.destroy_annotation(second.id)
check(annotations.retrieve_annotation(second.id).deleted is True, "deletion is a soft delete")
doomed = [a.id for a in everything.results[:3]]
annotations.multiple_delete(id__in=",".join(str(i) for i in doomed))
left = annotations.list_annotations(image=slide.id, deleted=False)
check(left.count == 1097, "multiple_delete deletes the listed annotations")

with tempfile.TemporaryDirectory() as tmp:
    thumbnail = Path(tmp) / "thumb.png"
    images.download_thumbnail(slide.id, thumbnail)
    check(thumbnail.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "the thumbnail is a PNG")
    info = images.get_slide_information(slide.id)
    check(info.levels >= 2 and info.level_downsamples[0] == 1.0, "slide information")
    for image, original in ((png_image, png), (slide, svs)):
        target = Path(tmp) / image.name
        status, _ = images.download_image(image.id, target, original_image=True)
        check(status == 200 and filecmp.cmp(target, original, shallow=False),
              f"the download of {image.name} is identical to the upload")

print("exact-sync compatibility: all checks passed")
