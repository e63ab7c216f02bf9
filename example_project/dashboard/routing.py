from channels.routing import route_class
from example_project.dashboard.consumers import DashboardDemultiplexer

channel_routing = [route_class(DashboardDemultiplexer, path=r"^/ws/dashboard/$")]
