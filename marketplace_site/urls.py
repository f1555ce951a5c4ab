from django.contrib import admin
from django.urls import include, path

from marketplace_site.accounts import views as accounts
from marketplace_site.catalog import views as catalog
from marketplace_site.favicon import favicon
from marketplace_site.health import healthz, readyz
from marketplace_site.metrics import metrics_view
from marketplace_site.orders import views as orders

urlpatterns = [
    path("", catalog.home, name="home"),
    path("books/<int:book_id>/", catalog.book_detail, name="book-detail"),
    path("cart/", orders.cart_detail, name="cart"),
    path("cart/add/<int:book_id>/", orders.cart_add_view, name="cart-add"),
    path("cart/update/<int:book_id>/", orders.cart_update_view, name="cart-update"),
    path("cart/remove/<int:book_id>/", orders.cart_remove_view, name="cart-remove"),
    path("checkout/", orders.checkout, name="checkout"),
    path("orders/", orders.order_list_view, name="order-list"),
    path("orders/<int:order_id>/", orders.order_detail, name="order-detail"),
    path("account/", accounts.account, name="account"),
    path("account/email/", accounts.email_change, name="email-change"),
    path("accounts/signup/", accounts.signup, name="signup"),
    # Before django.contrib.auth's own: throttled, and sent by the worker.
    path("accounts/password_reset/", accounts.password_reset, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
