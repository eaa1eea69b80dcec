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

from exact_sync.v1.api.annotation_media_files_api import AnnotationMediaFilesApi
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
from exact_sync.v1.rest import ApiException

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
media_files = AnnotationMediaFilesApi(client)


def refused(call, status):
    """Whether `call` raised the client's ApiException with HTTP `status`."""
    try:
        call()
    except ApiException as e:
        return e.status == status
    return False


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

# Edits of descriptive fields and deletes, which EXACT accepts: each is an event here.
renamed_team = teams.partial_update_team(team.id, name="Compat team renamed")
check(renamed_team.name == "Compat team renamed", "partial_update_team renames the team")
corrected = images.partial_update_image(slide.id, objective_power=20.0, name=slide.name)
check(corrected.objective_power == 20.0, "partial_update_image corrects the objective power")
check(images.retrieve_image(slide.id).objective_power == 20.0,
      "the client's Image model reads objectivePower back")
check([i.id for i in images.list_images(objective_power__range="19,21").results] == [slide.id],
      "list_images filters by objectivePower__range")

attached = media_files.create_annotation_media_file(
    name="cell.png", media_file_type=2, file=str(png), annotation=first.id)
attached = attached.results[0] if hasattr(attached, "results") else attached
renamed_file = media_files.partial_update_annotation_media_file(attached.id, name="mitosis.png")
check(renamed_file.name == "mitosis.png", "partial_update_annotation_media_file renames the file")

lines = types.create_annotation_type(
    body=AnnotationType(name="lines", product=product.id, vector_type=3))
check(types.partial_update_annotation_type(lines.id, vector_type=4).vector_type == 4,
      "partial_update_annotation_type changes the vector type of a type without annotations")
check(refused(lambda: types.partial_update_annotation_type(box.id, vector_type=5), 409),
      "a vector type the type's boxes do not fit is refused with 409")
types.destroy_annotation_type(lines.id)
check([t.id for t in types.list_annotation_types(product=product.id).results] == [box.id],
      "destroy_annotation_type takes the type out of the list")
check(refused(lambda: types.retrieve_annotation_type(lines.id), 404),
      "a deleted type answers 404")

spare_product = products.create_product(body=Product(name="Spare", team=team.id, imagesets=[]))
products.destroy_product(spare_product.id)
check(spare_product.id not in [p.id for p in products.list_products().results],
      "destroy_product takes the product out of the list")
spare_team = teams.create_team(body=Team(name="Spare team"))
teams.destroy_team(spare_team.id)
check(refused(lambda: teams.retrieve_team(spare_team.id), 404), "destroy_team: the team answers 404")

# Every model of the client reads our JSON key for key: each key of its attribute_map is in
# the answer of the resource it models.
from exact_sync.v1 import models  # noqa: E402


def raw(path):
    return client.call_api(
        path, "GET", header_params={"Accept": "application/json"}, auth_settings=["basicAuth"],
        response_type="object", _return_http_data_only=True)


membership = raw(f"/api/v1/users/team_membership/?team={team.id}")["results"][0]
tag = client.call_api(
    "/api/v1/images/set_tags/", "POST", body={"name": "compat", "imagesets": [image_set.id]},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
logged = client.call_api(
    "/api/v1/annotations/log_image_actions/", "POST", body={"image": slide.id, "action": 1},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
screening = client.call_api(
    "/api/v1/images/screening_modes/", "POST",
    body={"image": slide.id, "x_resolution": 1000, "y_resolution": 1000},
    header_params={"Content-Type": "application/json", "Accept": "application/json"},
    auth_settings=["basicAuth"], response_type="object", _return_http_data_only=True)
shapes = {
    models.Team: f"/api/v1/users/teams/{team.id}/",
    models.User: f"/api/v1/users/users/{me.id}/",
    models.TeamMembership: f"/api/v1/users/team_membership/{membership['id']}/",
    models.ImageSet: f"/api/v1/images/image_sets/{image_set.id}/",
    models.Image: f"/api/v1/images/images/{slide.id}/",
    models.SlideInformation: f"/api/v1/images/images/{slide.id}/slide_information/",
    models.SetTag: f"/api/v1/images/set_tags/{tag['id']}/",
    models.ScreeningMode: f"/api/v1/images/screening_modes/{screening['id']}/",
    models.Product: f"/api/v1/administration/products/{product.id}/",
    models.AnnotationType: f"/api/v1/annotations/annotation_types/{box.id}/",
    models.Annotation: f"/api/v1/annotations/annotations/{first.id}/",
    models.Verification: f"/api/v1/annotations/verifications/{verdict.id}/",
    models.AnnotationMediaFile: f"/api/v1/annotations/annotation_media_files/{attached.id}/",
    models.LogImageAction: f"/api/v1/annotations/log_image_actions/{logged['id']}/",
}
for model, path in shapes.items():
    answer = raw(path)
    missing = sorted(set(model.attribute_map.values()) - set(answer))
    check(not missing, f"{model.__name__} finds every key it reads in {path}: missing {missing}")

print("exact-sync compatibility: all checks passed")
