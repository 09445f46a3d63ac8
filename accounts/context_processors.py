from django.conf import settings


def links(request):
    return {"flower_url": settings.FLOWER_URL}
